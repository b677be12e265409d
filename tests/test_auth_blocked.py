"""Redo refusing the API secret stops every call and commit and fails readiness (not liveness);
rotating the secret file brings the consumer back without a restart."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from expected_calls import received_bodies, record_positions

from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.expectations import expected_status_bodies
from devkit.generator import tracking_stream
from devkit.kafka_tools import committed_offsets, produce_events, wait_until
from devkit.sandbox import SandboxControl

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
        # The gate retries every AUTH_RETRY_SECONDS (0.5 s): after a few refused probes, across
        # many commit intervals (0.2 s), nothing was sent or committed.
        wait_until(
            lambda: len(sandbox.calls(status_code=401)) >= 4, 30, "the gate's refused probes"
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
