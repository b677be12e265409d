"""Redo refusing the default API secret stops every call and commit and fails readiness (not
liveness); refusing one store's own secret holds only that store's calls (and its partitions'
commits past them), probes it once per AUTH_RETRY_SECONDS and leaves readiness alone. Rotating
the secret file brings the consumer back without a restart."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import committed_offsets, produce_events, wait_until
from devkit.sandbox import SandboxControl
from tests.support.expected_calls import received_bodies, record_positions

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

ROTATED = "rotated-secret-7f3a9c"


def rotate(secret_file: Path, secret: str) -> None:
    """Replace the file in one step, as a Kubernetes secret volume does."""
    staged = secret_file.with_name(secret_file.name + ".new")
    staged.write_text(secret)
    os.replace(staged, secret_file)


def test_a_refused_secret_blocks_calls_commits_and_readiness_until_it_is_rotated(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    secret_file: Path,
) -> None:
    topic = new_topic(partitions=3)
    before = tracking_stream(shipments=30, scans_per_shipment=3, seed=51, prefix="before")
    after = tracking_stream(shipments=30, scans_per_shipment=3, seed=52, prefix="after")
    env = consumer_env(topic)
    group = env["KAFKA_GROUP_ID"]
    produce_events(kafka_bootstrap, topic, before)

    with ConsumerProcess(env) as proc:
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        proc.wait_ready()
        held = committed_offsets(kafka_bootstrap, group, topic)
        sent_before = len(sandbox.calls(status_code=200))

        sandbox.set_faults(token=ROTATED)  # Redo now wants a secret the consumer does not have
        produce_events(kafka_bootstrap, topic, after)
        wait_until(lambda: proc.probe("/readyz") == 503, 30, "/readyz to fail on the 401")
        assert proc.probe("/healthz") == 200, "a pod blocked on its secret is still alive"
        assert proc.metric("tracking_redo_auth_blocked") == 1
        # The breaker probes every AUTH_RETRY_SECONDS (0.5 s): after a few refused probes, across
        # many commit intervals (0.2 s), nothing was sent or committed.
        wait_until(
            lambda: len(sandbox.calls(status_code=401)) >= 4, 30, "the breaker's refused probes"
        )
        assert len(sandbox.calls(status_code=200)) == sent_before, "calls went on after the 401"
        assert committed_offsets(kafka_bootstrap, group, topic) == held

        # Nothing committed past the first refused record, whichever partition it is on.
        first_refused = sandbox.calls(status_code=401)[0]["fulfillment_id"]
        positions = record_positions(kafka_bootstrap, topic, len(before) + len(after))
        partition, offset = positions[first_refused][0]
        assert held[partition] <= offset
        assert proc.probe("/readyz") == 503

        rotate(secret_file, ROTATED)
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        wait_until(lambda: proc.probe("/readyz") == 200, 30, "/readyz to recover")
        assert proc.metric("tracking_redo_auth_blocked") == 0
        assert proc.stop() == 0

    received = received_bodies(sandbox)
    for fulfillment, bodies in expected_status_bodies(before + after).items():
        assert received[fulfillment] == bodies, f"{fulfillment}: calls missing or out of order"


REFUSED_STORE = "store-refused"
AUTH_RETRY_SECONDS = 1.0


def test_a_refused_store_secret_holds_only_that_store_and_probes_once_per_interval(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    secret_file: Path,
    tmp_path: Path,
) -> None:
    topic = new_topic(partitions=3)
    others = tracking_stream(shipments=30, scans_per_shipment=3, seed=61, prefix="other")
    refused = [
        replace(event, store_id=REFUSED_STORE)
        for event in tracking_stream(shipments=10, scans_per_shipment=3, seed=62, prefix="refused")
    ]
    store_secrets = tmp_path / "store-secrets.yaml"
    store_secrets.write_text(f"{REFUSED_STORE}: not-the-sandbox-token\n")
    env = consumer_env(
        topic,
        REDO_STORE_SECRETS_FILE=str(store_secrets),
        AUTH_RETRY_SECONDS=str(AUTH_RETRY_SECONDS),
    )
    group = env["KAFKA_GROUP_ID"]
    produce_events(kafka_bootstrap, topic, sorted(others + refused, key=lambda e: e.occurred_at))

    with ConsumerProcess(env) as proc:
        expected_others = expected_status_bodies(others)

        def others_delivered() -> bool:
            proc.alive_or_fail()
            received = received_bodies(sandbox)
            return all(received.get(f) == bodies for f, bodies in expected_others.items())

        wait_until(others_delivered, 60, f"the other store's calls (log: {proc.tail()})")
        proc.wait_ready()

        def refusals() -> list[float]:
            return [
                datetime.fromisoformat(call["received_at"]).timestamp()
                for call in sandbox.calls(status_code=401)
            ]

        # The calls in flight when the first 401 came, then probes: wait for three of those.
        def probed_three_times() -> list[float]:
            proc.alive_or_fail()
            times = refusals()
            probes = [t for t in times if t - times[0] >= AUTH_RETRY_SECONDS / 2] if times else []
            assert proc.probe("/readyz") == 200, "another store's secret flapped readiness"
            return probes if len(probes) >= 3 else []

        probes = wait_until(probed_three_times, 30, "three probes of the refused secret")
        times = refusals()
        assert {call["store_id"] for call in sandbox.calls(status_code=401)} == {REFUSED_STORE}
        timeline = [times[0], *[t for t in times if t - times[0] >= AUTH_RETRY_SECONDS / 2]]
        gaps = [later - earlier for earlier, later in itertools.pairwise(timeline)]
        # Received times: each probe leaves at least AUTH_RETRY_SECONDS after the answer to the
        # one before (10 ms for the sandbox's millisecond timestamps).
        assert min(gaps) >= AUTH_RETRY_SECONDS - 0.01, f"probes closer than the interval: {gaps}"
        assert len(probes) <= (times[-1] - times[0]) / AUTH_RETRY_SECONDS + 1

        assert proc.metric("tracking_redo_auth_blocked", secret=f"store:{REFUSED_STORE}") == 1
        assert proc.metric("tracking_redo_auth_blocked", secret="default") == 0
        assert proc.probe("/readyz") == 200
        first_refused = sandbox.calls(status_code=401)[0]["fulfillment_id"]
        positions = record_positions(kafka_bootstrap, topic, len(others) + len(refused))
        partition, offset = positions[first_refused][0]
        assert committed_offsets(kafka_bootstrap, group, topic)[partition] <= offset

        # The store's secret is fixed in the file: the next probe re-reads it and all goes on.
        staged = store_secrets.with_name("store-secrets.new")
        staged.write_text(f"{REFUSED_STORE}: {secret_file.read_text()}\n")  # the sandbox's
        os.replace(staged, store_secrets)
        wait_fully_committed(kafka_bootstrap, group, topic, [proc])
        assert proc.metric("tracking_redo_auth_blocked", secret=f"store:{REFUSED_STORE}") == 0
        assert proc.stop() == 0

    received = received_bodies(sandbox)
    for fulfillment, bodies in expected_status_bodies(others + refused).items():
        assert received[fulfillment] == bodies, f"{fulfillment}: calls missing or out of order"
