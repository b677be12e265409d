"""Wiring: builds every part from the settings and runs until SIGTERM/SIGINT.

The asyncio loop (this thread) runs the pipeline and the HTTP calls; the Kafka thread runs the
librdkafka consumer; a daemon thread serves metrics and health. Start-up order: signal handlers,
then the health server, then the first Kafka call, so a pod that cannot reach the broker is
visible (log lines, ``/healthz``, ``/metrics``) and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from consumer.config import Settings, librdkafka_overrides
from consumer.delivery.deliverer import Deliverer, RetryPolicy
from consumer.kafka.dead_letters import DeadLetters
from consumer.kafka.producer import AsyncProducer
from consumer.kafka.source import KafkaSource, SourceSettings, consumer_config
from consumer.model import RedoCall
from consumer.ops.health import Health, HealthServer, keep_beating
from consumer.ops.runtime import freeze_startup_objects, tune_gc
from consumer.processing.processor import Processor
from consumer.processing.settings import ProcessingSettings
from consumer.redo.client import RedoClient
from consumer.redo.payload import request_body, request_path
from consumer.redo.secrets import DEFAULT_SECRET, SecretProvider
from consumer.rules import RulesConfig, load_rules
from consumer.serde.events import build_decoder
from consumer.state.changelog import Changelog, ensure_changelog

log = logging.getLogger(__name__)

REVOKE_TIMEOUT_SECONDS = 15.0
TIMER_TICK_SECONDS = 1.0
# Start-up against an unreachable broker: an attempt fails after 3 s (a reachable broker answers
# metadata in milliseconds; 3 s leaves room for a TLS/SASL handshake), the next follows after
# 1, 2, 4 ... 30 s, each failure logged: the first line comes within 10 s of the start (imports
# included), later ones at most 33 s apart.
STARTUP_ATTEMPT_TIMEOUT_SECONDS = 3.0
STARTUP_RETRY_INITIAL_SECONDS = 1.0
STARTUP_RETRY_MAX_SECONDS = 30.0
_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
    }
)


class DryRunSender:
    """``--dry-run``: logs each call it would make and reports success without sending."""

    async def send(self, call: RedoCall) -> None:
        log.info(
            "dry run: would POST %s",
            request_path(call),
            extra={"fulfillment_id": call.fulfillment_id, "body": json.dumps(request_body(call))},
        )

    async def aclose(self) -> None:
        """Nothing to close."""


async def run_service(settings: Settings, *, dry_run: bool = False) -> None:
    tune_gc()
    loop = asyncio.get_running_loop()
    stop = threading.Event()  # for the Kafka thread
    stopping = asyncio.Event()  # for the start-up retries on this loop

    def request_stop() -> None:
        stop.set()
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    overrides = librdkafka_overrides()
    common: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "logger": logging.getLogger("librdkafka"),
        **overrides,
    }
    rules = load_rules(settings.rules_file)
    secrets = SecretProvider.from_settings(settings)
    sender: RedoClient | DryRunSender = (
        DryRunSender()
        if dry_run
        else RedoClient(
            settings.redo_api_url,
            secrets,
            timeout=settings.redo_timeout_seconds,
            max_connections=settings.max_in_flight,
        )
    )
    policy = RetryPolicy(
        initial_seconds=settings.retry_initial_seconds,
        max_seconds=settings.retry_max_seconds,
        not_found_window_seconds=settings.not_found_retry_window_seconds,
        auth_retry_seconds=settings.auth_retry_seconds,
    )
    circuit_open = threading.Event()
    deliverer = Deliverer(
        sender,
        secrets,
        policy,
        max_in_flight=settings.max_in_flight,
        circuit_flag=circuit_open,
        rate_limit=settings.redo_rate_limit,
    )
    health = Health(auth_blocked=lambda: deliverer.auth_breaker(DEFAULT_SECRET).is_open)
    server = HealthServer(health, settings.metrics_port)
    server.start()
    heartbeat = asyncio.create_task(keep_beating(health))
    try:
        if await _prepare_topics(settings, common, health, stopping):
            log.info(
                "consuming",
                extra={
                    "topic": settings.kafka_topic,
                    "group": settings.kafka_group_id,
                    "dry_run": dry_run,
                },
            )
            await _consume(settings, common, deliverer, policy, rules, health, circuit_open, stop)
    finally:
        heartbeat.cancel()
        await sender.aclose()
        server.stop()
        log.info("stopped")


async def _consume(
    settings: Settings,
    common: dict[str, Any],
    deliverer: Deliverer,
    policy: RetryPolicy,
    rules: RulesConfig,
    health: Health,
    circuit_open: threading.Event,
    stop: threading.Event,
) -> None:
    """Run the processing and the Kafka thread until ``stop`` is set."""
    producer = AsyncProducer(common)
    group_config = consumer_config(common, settings.kafka_group_id)
    changelog = Changelog(settings.changelog_topic, producer, group_config, rules=rules)
    decoder = build_decoder(settings)
    processor = Processor(
        decoder,
        deliverer,
        DeadLetters(producer, settings.dead_letter_topic),
        changelog,
        policy,
        ProcessingSettings(
            rules,
            settings.forward_scans,
            settings.max_scan_age,
            settings.max_clock_skew,
            settings.max_buffered_per_partition,
        ),
    )
    health.held_writes = lambda: processor.writes_held
    health.unexpected_failures = lambda: processor.unexpected_failures
    source = KafkaSource(
        SourceSettings(
            topic=settings.kafka_topic,
            max_buffered_per_partition=settings.max_buffered_per_partition,
            commit_interval_seconds=settings.commit_interval_seconds,
            revoke_timeout_seconds=REVOKE_TIMEOUT_SECONDS,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
        ),
        group_config,
        processor,
        asyncio.get_running_loop(),
        health,
        circuit_open,
        changelog,
    )
    ticker = asyncio.create_task(_tick(processor))
    freeze_startup_objects()
    health.beat()  # liveness watches the Kafka thread from its start, before its first poll
    try:
        await asyncio.to_thread(source.run, stop)
    finally:
        ticker.cancel()
        await processor.close()
        await decoder.aclose()
        producer.close()


async def _tick(processor: Processor) -> None:
    """Wall-clock timers (stalls, passed ETAs) of caught-up partitions."""
    while True:
        await asyncio.sleep(TIMER_TICK_SECONDS)
        processor.tick()


async def _prepare_topics(
    settings: Settings, common: dict[str, Any], health: Health, stopping: asyncio.Event
) -> bool:
    """Check the input topic and create the changelog and dead-letter topics, retrying with
    backoff for as long as Kafka fails; False when stopped first. A ``ConfigError`` (input topic
    missing, changelog of another partition count) is raised: retrying cannot fix it.

    Each attempt runs off the loop and fails within ``STARTUP_ATTEMPT_TIMEOUT_SECONDS`` while the
    broker is unreachable, so the first log line comes that soon and a SIGTERM waits for at most
    one attempt. The last failure is also ``/readyz``'s answer."""
    admin = AdminClient(common)
    delay = STARTUP_RETRY_INITIAL_SECONDS
    while not stopping.is_set():
        try:
            await asyncio.to_thread(_ensure_topics, admin, common, settings)
        except KafkaException as exc:
            health.start_up_problem = (
                f"{_what_failed(exc, settings.kafka_bootstrap_servers)}: {_kafka_error(exc)}"
            )
            log.error("%s; retrying in %.0fs", health.start_up_problem, delay)
        else:
            health.start_up_problem = None
            return not stopping.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        delay = min(delay * 2, STARTUP_RETRY_MAX_SECONDS)
    log.info("stopped during start-up")
    return False


def _ensure_topics(admin: AdminClient, common: dict[str, Any], settings: Settings) -> None:
    # ensure_changelog waits up to 30 s for metadata; this short call fails first when the
    # broker is unreachable.
    admin.list_topics(timeout=STARTUP_ATTEMPT_TIMEOUT_SECONDS)
    ensure_changelog(common, settings.changelog_topic, input_topic=settings.kafka_topic)
    ensure_topic(admin, settings.dead_letter_topic, like=settings.kafka_topic)


def _kafka_error(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def _what_failed(exc: KafkaException, bootstrap: str) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and error.code() in _UNREACHABLE:
        return f"Kafka not reachable at {bootstrap}"
    return f"Kafka topic set-up failed at {bootstrap}"


def ensure_topic(admin: AdminClient, topic: str, *, like: str) -> None:
    """Create ``topic`` with the partition count of ``like`` unless it exists."""
    metadata = admin.list_topics(timeout=STARTUP_ATTEMPT_TIMEOUT_SECONDS)
    if topic in metadata.topics:
        return
    source = metadata.topics.get(like)
    partitions = len(source.partitions) if source is not None and source.partitions else 1
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    for future in futures.values():
        try:
            future.result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
