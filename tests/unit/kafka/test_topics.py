"""Start-up topic set-up against a fake admin client: creation written once, the changelog's
partition-count check, and the retry loop's timing and ``/readyz`` answer."""

from __future__ import annotations

import asyncio
import concurrent.futures
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer.backoff import Backoff
from consumer.errors import ConfigError
from consumer.kafka import topics
from consumer.kafka.topics import (
    STARTUP_ATTEMPT_TIMEOUT_SECONDS,
    STARTUP_BACKOFF,
    TopicPlan,
    create_topic,
    ensure_changelog,
    ensure_topics,
    prepare_topics,
)
from consumer.signals import Signals

PLAN = TopicPlan("k:9092", "in", "in.state", "in.dlq")


class FakeAdmin:
    def __init__(self, existing: dict[str, int], *, failures: int = 0) -> None:
        self.existing = dict(existing)
        self.failures = failures
        self.timeouts: list[float] = []
        self.created: list[tuple[str, int, dict[str, str]]] = []
        self.race = False
        self.on_failure: Any = None

    def list_topics(self, *, timeout: float) -> Any:
        self.timeouts.append(timeout)
        if self.failures:
            self.failures -= 1
            if self.on_failure is not None:
                self.on_failure()
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return SimpleNamespace(
            topics={
                name: SimpleNamespace(partitions=dict.fromkeys(range(n)))
                for name, n in self.existing.items()
            }
        )

    def create_topics(self, new: list[Any]) -> dict[str, concurrent.futures.Future[None]]:
        futures = {}
        for topic in new:
            future: concurrent.futures.Future[None] = concurrent.futures.Future()
            if self.race:
                future.set_exception(KafkaException("TOPIC_ALREADY_EXISTS: lost a race"))
            else:
                self.created.append((topic.topic, topic.num_partitions, dict(topic.config or {})))
                self.existing[topic.topic] = topic.num_partitions
                future.set_result(None)
            futures[topic.topic] = future
        return futures


def test_missing_topics_are_created_like_the_input_topic() -> None:
    admin = FakeAdmin({"in": 6})
    ensure_topics(admin, PLAN)  # type: ignore[arg-type]
    assert admin.created == [
        ("in.state", 6, {"cleanup.policy": "compact"}),
        ("in.dlq", 6, {}),
    ]
    assert admin.timeouts[0] == STARTUP_ATTEMPT_TIMEOUT_SECONDS

    ensure_topics(admin, PLAN)  # type: ignore[arg-type]
    assert len(admin.created) == 2, "existing topics are left alone"


def test_a_topic_another_pod_just_created_is_fine_and_other_errors_are_not() -> None:
    admin = FakeAdmin({})
    admin.race = True
    create_topic(admin, "x", 1)  # type: ignore[arg-type]

    failing = FakeAdmin({})

    def refuse(new: list[Any]) -> dict[str, concurrent.futures.Future[None]]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        future.set_exception(KafkaException("TOPIC_AUTHORIZATION_FAILED"))
        return {"x": future}

    failing.create_topics = refuse  # type: ignore[method-assign]
    with pytest.raises(KafkaException):
        create_topic(failing, "x", 1)  # type: ignore[arg-type]


def test_a_changelog_of_another_partition_count_or_no_input_topic_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"STATE_TOPIC: in\.state has 3 partitions"):
        ensure_changelog(FakeAdmin({"in": 6, "in.state": 3}), "in.state", input_topic="in")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="KAFKA_TOPIC: input topic in does not exist"):
        ensure_changelog(FakeAdmin({}), "in.state", input_topic="in")  # type: ignore[arg-type]


def test_the_start_up_backoff_keeps_its_values() -> None:
    """1, 2, 4 … 30 s: with 3 s attempts, failures are logged at most 33 s apart."""
    assert [STARTUP_BACKOFF.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def _prepare(admin: FakeAdmin, signals: Signals, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(topics, "AdminClient", lambda config: admin)
    monkeypatch.setattr(topics, "STARTUP_BACKOFF", Backoff(0.001, 0.001, jitter=False))

    async def run() -> bool:
        return await prepare_topics(PLAN, {}, signals, asyncio.Event())

    return asyncio.run(run())


def test_start_up_retries_while_kafka_is_unreachable_and_readiness_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signals = Signals()
    admin = FakeAdmin({"in": 2}, failures=3)
    problems: list[str | None] = []
    admin.on_failure = lambda: problems.append(signals.start_up_problem)

    assert _prepare(admin, signals, monkeypatch) is True

    assert problems[0] is None
    assert problems[1] is not None and problems[1].startswith("Kafka not reachable at k:9092: ")
    assert signals.start_up_problem is None
    assert admin.timeouts[:4] == [STARTUP_ATTEMPT_TIMEOUT_SECONDS] * 4


def test_a_config_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError):
        _prepare(FakeAdmin({}), Signals(), monkeypatch)


def test_stopping_during_start_up_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({"in": 2}, failures=1000)
    monkeypatch.setattr(topics, "AdminClient", lambda config: admin)

    async def run() -> bool:
        stopping = asyncio.Event()
        task = asyncio.create_task(prepare_topics(PLAN, {}, Signals(), stopping))
        await asyncio.sleep(0.05)  # the first attempt failed: waiting 1 s before the next
        stopping.set()
        return await asyncio.wait_for(task, 2)

    assert asyncio.run(run()) is False
    assert admin.timeouts == [STARTUP_ATTEMPT_TIMEOUT_SECONDS]
