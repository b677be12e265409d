"""The API secret never shows: not in the consumer's log, its metrics, its dead letters, nor the
text of any error the Redo client raises — whatever Redo answers."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from consumer.errors import RedoError
from consumer.model import CallKind, RedoCall
from consumer.redo.client import RedoClient
from consumer.redo.secrets import SecretProvider
from devkit.consumer_process import ConsumerProcess, wait_fully_committed
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce, produce_events, read_topic, wait_until
from devkit.sandbox import SandboxControl, SandboxServer

Env = Callable[..., dict[str, str]]


@pytest.fixture
def secret() -> str:
    """Distinctive enough that finding its random part anywhere means it leaked."""
    return f"hygiene-{uuid.uuid4().hex}"


def assert_clean(text: str, secret: str, where: str) -> None:
    leaked = secret in text or secret.removeprefix("hygiene-") in text
    assert not leaked, f"the API secret appears in {where}"


@pytest.mark.broker
def test_secret_stays_out_of_logs_metrics_and_dead_letters(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    secret_file: Path,
    secret: str,
) -> None:
    topic = new_topic(partitions=3)
    events = tracking_stream(shipments=20, scans_per_shipment=3, seed=71)
    victim = events[-1].fulfillment_id
    garbage = [(f"junk-{i}".encode(), b"\x02not avro" + bytes([i])) for i in range(4)]
    produce_events(kafka_bootstrap, topic, events)
    produce(kafka_bootstrap, topic, garbage)
    secret_file.write_text(secret)
    # First two calls: 400 (dead-lettered); then 401 while the sandbox wants another token;
    # the victim's calls: 404, dead-lettered at once.
    sandbox.set_faults(
        token="not-the-consumers-secret",
        fail_next={"count": 2, "status": 400},
        not_found=[victim],
    )
    env = consumer_env(topic, LOG_LEVEL="DEBUG", NOT_FOUND_RETRY_WINDOW_SECONDS="0")

    with ConsumerProcess(env) as proc:
        wait_until(lambda: sandbox.stats().get("401", 0) >= 2, 60, "401 answers")
        sandbox.set_faults(token=secret)
        wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [proc])
        stats = sandbox.stats()
        assert stats.get("400") == 2 and stats.get("404", 0) >= 1, stats
        metrics_text = proc.metrics_text()
        readiness = proc.probe("/readyz")
        assert proc.stop() == 0
        log_text = proc.log_path.read_text()

    assert readiness == 200
    assert "Redo refused" in log_text, "the log should report the refused calls"
    assert_clean(log_text, secret, "the consumer's log")
    assert_clean(metrics_text, secret, "/metrics")
    dead = read_topic(kafka_bootstrap, f"{topic}.dlq", expected=len(garbage) + 2 + stats["404"])
    for message in dead:
        parts = [message.key() or b"", message.value() or b""]
        parts += [name.encode() + b"=" + value for name, value in message.headers() or []]
        for part in parts:
            assert_clean(part.decode("utf-8", "replace"), secret, "a dead letter")


@pytest.fixture
def sandbox_for(secret: str) -> Iterator[SandboxServer]:
    with SandboxServer(token=secret) as server:
        yield server


FAULTS: list[dict[str, object]] = [
    {"token": "another-token"},
    {"fail_next": {"count": 1, "status": 400}},
    {"not_found": ["ful-1"]},
    {"fail_next": {"count": 1, "status": 503}},
    {"rate_limit_next": {"count": 1, "retry_after": 1}},
    {"drop_next": 1},
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: next(iter(fault)))
def test_redo_client_errors_never_carry_the_secret(
    sandbox_for: SandboxServer, secret: str, fault: dict[str, object]
) -> None:
    call = RedoCall(
        kind=CallKind.STATUS,
        store_id="store-1",
        order_id="order-1",
        fulfillment_id="ful-1",
        status="in_transit",
        at=datetime(2024, 5, 1, 12, tzinfo=UTC),
    )

    async def send() -> None:
        provider = SecretProvider(secret=SecretStr(secret))
        async with RedoClient(sandbox_for.url, provider, timeout=5) as client:
            await client.send(call)

    with SandboxControl(sandbox_for.url) as control:
        control.set_faults(**fault)
        with pytest.raises(RedoError) as caught:
            asyncio.run(send())
    error = caught.value
    rendered = "".join(traceback.format_exception(error))  # with any chained cause or context
    for text in (str(error), repr(error), error.body or "", rendered):
        assert_clean(text, secret, f"a {type(error).__name__}")
