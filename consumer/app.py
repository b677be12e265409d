"""Wiring: builds every part from the settings and runs until SIGTERM/SIGINT.

The asyncio loop (this thread) runs the pipeline and the HTTP calls; the Kafka thread runs the
librdkafka consumer; a daemon thread serves metrics and health. Start-up order: signal handlers,
then the health server, then the first Kafka call, so a pod that cannot reach the broker is
visible (log lines, ``/healthz``, ``/metrics``) and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from typing import Any

from consumer.config import Settings
from consumer.delivery.deliverer import Deliverer
from consumer.delivery.retry import RetryPolicy
from consumer.kafka.config import common_config, consumer_config
from consumer.kafka.dead_letters import DeadLetters
from consumer.kafka.producer import AsyncProducer
from consumer.kafka.source import KafkaSource, SourceSettings
from consumer.kafka.topics import TopicPlan, prepare_topics
from consumer.model import RedoCall
from consumer.ops.health import Health, HealthServer, keep_beating
from consumer.ops.runtime import freeze_startup_objects, tune_gc
from consumer.processing.processor import Processor
from consumer.processing.settings import ProcessingSettings
from consumer.redo.client import RedoClient
from consumer.redo.payload import request_body, request_path
from consumer.redo.secrets import SecretProvider
from consumer.rules import RulesConfig, load_rules
from consumer.serde.events import build_decoder
from consumer.signals import Signals
from consumer.state.changelog import Changelog

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
    stop = threading.Event()  # for the Kafka thread
    stopping = asyncio.Event()  # for the start-up retries on this loop

    def request_stop() -> None:
        stop.set()
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    common = common_config(settings.kafka_bootstrap_servers)
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
    signals = Signals()
    deliverer = Deliverer(
        sender,
        secrets,
        policy,
        max_in_flight=settings.max_in_flight,
        signals=signals,
        rate_limit=settings.redo_rate_limit,
    )
    server = HealthServer(Health(signals), settings.metrics_port)
    server.start()
    heartbeat = asyncio.create_task(keep_beating(signals))
    topics = TopicPlan(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        input_topic=settings.kafka_topic,
        changelog_topic=settings.changelog_topic,
        dead_letter_topic=settings.dead_letter_topic,
    )
    try:
        if await prepare_topics(topics, common, signals, stopping):
            log.info(
                "consuming",
                extra={
                    "topic": settings.kafka_topic,
                    "group": settings.kafka_group_id,
                    "dry_run": dry_run,
                },
            )
            await _consume(settings, common, deliverer, policy, rules, signals, stop)
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
    signals: Signals,
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
    signals.watch_pipeline(processor)
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
        signals,
        changelog,
    )
    ticker = asyncio.create_task(_tick(processor))
    freeze_startup_objects()
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
