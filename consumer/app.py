"""Wiring: builds every part from the settings and runs until SIGTERM/SIGINT.

The asyncio loop (this thread) runs the pipeline and the HTTP calls; the Kafka thread runs the
librdkafka consumer; a daemon thread serves metrics and health.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from consumer.codec import build_decoder
from consumer.config import Settings, librdkafka_overrides
from consumer.dead_letters import DeadLetters
from consumer.delivery import Deliverer, RetryPolicy
from consumer.health import Health, HealthServer
from consumer.kafka_io import KafkaSource, SourceSettings, consumer_config
from consumer.model import RedoCall
from consumer.pipeline import Pipeline, ProcessingSettings
from consumer.producer import AsyncProducer
from consumer.redo.client import RedoClient
from consumer.redo.payload import request_body, request_path
from consumer.redo.secrets import SecretProvider
from consumer.rules import load_rules
from consumer.runtime import freeze_startup_objects, tune_gc
from consumer.state.changelog import Changelog, ensure_changelog

log = logging.getLogger(__name__)

REVOKE_TIMEOUT_SECONDS = 15.0
TIMER_TICK_SECONDS = 1.0


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
    overrides = librdkafka_overrides()
    common: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "logger": logging.getLogger("librdkafka"),
        **overrides,
    }
    ensure_changelog(common, settings.changelog_topic, input_topic=settings.kafka_topic)
    ensure_topic(common, settings.dead_letter_topic, like=settings.kafka_topic)
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
    producer = AsyncProducer(common)
    group_config = consumer_config(common, settings.kafka_group_id)
    changelog = Changelog(settings.changelog_topic, producer, group_config)
    pipeline = Pipeline(
        build_decoder(settings),
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
    health = Health(
        auth_blocked=lambda: deliverer.auth_gate.closed, held_writes=lambda: pipeline.writes_held
    )
    server = HealthServer(health, settings.metrics_port)
    server.start()
    source = KafkaSource(
        SourceSettings(
            topic=settings.kafka_topic,
            max_buffered_per_partition=settings.max_buffered_per_partition,
            commit_interval_seconds=settings.commit_interval_seconds,
            revoke_timeout_seconds=REVOKE_TIMEOUT_SECONDS,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
        ),
        group_config,
        pipeline,
        loop,
        health,
        circuit_open,
        changelog,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "consuming",
        extra={"topic": settings.kafka_topic, "group": settings.kafka_group_id, "dry_run": dry_run},
    )
    ticker = asyncio.create_task(_tick(pipeline))
    freeze_startup_objects()
    try:
        await asyncio.to_thread(source.run, stop)
    finally:
        ticker.cancel()
        await pipeline.close()
        await sender.aclose()
        producer.close()
        server.stop()
        log.info("stopped")


async def _tick(pipeline: Pipeline) -> None:
    """Wall-clock timers (stalls, passed ETAs) of caught-up partitions."""
    while True:
        await asyncio.sleep(TIMER_TICK_SECONDS)
        pipeline.tick()


def ensure_topic(config: dict[str, Any], topic: str, *, like: str) -> None:
    """Create ``topic`` with the partition count of ``like`` unless it exists."""
    admin = AdminClient(config)
    metadata = admin.list_topics(timeout=30)
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
