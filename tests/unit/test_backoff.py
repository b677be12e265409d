"""The one backoff schedule: doubling, capped, jittered under its ceiling, Retry-After a floor."""

from __future__ import annotations

import random

from consumer.backoff import Backoff


def test_without_jitter_it_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    plain = Backoff(0.5, 30.0, jitter=False)
    assert [plain.delay(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_huge_attempt_number_neither_overflows_nor_passes_the_cap() -> None:
    assert Backoff(1.0, 30.0, jitter=False).delay(10**6) == 30.0


def test_full_jitter_stays_within_the_ceiling_and_varies() -> None:
    random.seed(7)
    jittered = Backoff(0.2, 30.0)
    delays = [jittered.delay(3) for _ in range(200)]
    assert all(0 <= d <= 1.6 for d in delays)
    assert len(set(delays)) > 100, "full jitter: retries of many shipments do not line up"


def test_retry_after_is_a_floor() -> None:
    assert Backoff(0.2, 30.0).delay(0, at_least=5.0) == 5.0
    assert Backoff(1.0, 30.0, jitter=False).delay(2, at_least=0.5) == 4.0
