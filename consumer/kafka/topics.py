"""Start-up topic set-up: check the input topic, create the changelog and dead-letter topics.

Contract: ``prepare_topics`` retries, with backoff, for as long as Kafka fails, and returns False
when stopped first; a ``ConfigError`` (input topic missing, changelog of another partition
count) is raised at once, since retrying cannot fix it. Topic creation itself is written once,
``create_topic``, which treats "already exists" (another pod won the race) as success.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from consumer.backoff import Backoff
from consumer.errors import ConfigError
from consumer.kafka.config import admin_config
from consumer.signals import Signals

log = logging.getLogger(__name__)

# Start-up against an unreachable broker: an attempt fails after 3 s (a reachable broker answers
# metadata in milliseconds; 3 s leaves room for a TLS/SASL handshake), the next follows after
# 1, 2, 4 ... 30 s, each failure logged: the first line comes within 10 s of the start (imports
# included), later ones at most 33 s apart.
STARTUP_ATTEMPT_TIMEOUT_SECONDS = 3.0
STARTUP_RETRY_INITIAL_SECONDS = 1.0
STARTUP_RETRY_MAX_SECONDS = 30.0
STARTUP_BACKOFF = Backoff(STARTUP_RETRY_INITIAL_SECONDS, STARTUP_RETRY_MAX_SECONDS, jitter=False)
CHANGELOG_METADATA_TIMEOUT_SECONDS = 30.0
_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
    }
)


@dataclass(frozen=True)
class TopicPlan:
    """The topics the consumer needs, and where the brokers are (for the log line)."""

    bootstrap_servers: str
    input_topic: str
    changelog_topic: str
    dead_letter_topic: str


async def prepare_topics(
    plan: TopicPlan, common: Mapping[str, Any], signals: Signals, stopping: asyncio.Event
) -> bool:
    """Set the topics up, retrying while Kafka fails; False when ``stopping`` is set first.

    Each attempt runs off the loop and fails within ``STARTUP_ATTEMPT_TIMEOUT_SECONDS`` while the
    broker is unreachable, so the first log line comes that soon and a SIGTERM waits for at most
    one attempt. The last failure is also ``/readyz``'s answer (``signals.start_up_problem``)."""
    admin = AdminClient(admin_config(common))
    attempt = 0
    while not stopping.is_set():
        try:
            await asyncio.to_thread(ensure_topics, admin, plan)
        except KafkaException as exc:
            delay = STARTUP_BACKOFF.delay(attempt)
            signals.start_up_problem = (
                f"{_what_failed(exc, plan.bootstrap_servers)}: {_kafka_error(exc)}"
            )
            log.error("%s; retrying in %.0fs", signals.start_up_problem, delay)
        else:
            signals.start_up_problem = None
            return not stopping.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        attempt += 1
    log.info("stopped during start-up")
    return False


def ensure_topics(admin: AdminClient, plan: TopicPlan) -> None:
    """One attempt (blocking): every topic checked or created."""
    # ensure_changelog waits up to 30 s for metadata; this short call fails first when the
    # broker is unreachable.
    admin.list_topics(timeout=STARTUP_ATTEMPT_TIMEOUT_SECONDS)
    ensure_changelog(admin, plan.changelog_topic, input_topic=plan.input_topic)
    ensure_topic(admin, plan.dead_letter_topic, like=plan.input_topic)


def ensure_changelog(admin: AdminClient, topic: str, *, input_topic: str) -> None:
    """Create the changelog (compacted, the input's partition count) unless it exists; refuse a
    changelog whose partition count differs: state would land on the wrong partitions."""
    metadata = admin.list_topics(timeout=CHANGELOG_METADATA_TIMEOUT_SECONDS)
    source = metadata.topics.get(input_topic)
    if source is None or not source.partitions:
        raise ConfigError("KAFKA_TOPIC", f"input topic {input_topic} does not exist")
    wanted = len(source.partitions)
    existing = metadata.topics.get(topic)
    if existing is not None:
        if len(existing.partitions) != wanted:
            raise ConfigError(
                "STATE_TOPIC",
                f"{topic} has {len(existing.partitions)} partitions, "
                f"the input topic {input_topic} has {wanted}; they must match",
            )
        return
    create_topic(admin, topic, wanted, config={"cleanup.policy": "compact"})
    log.info("created changelog %s with %d partitions", topic, wanted)


def ensure_topic(admin: AdminClient, topic: str, *, like: str) -> None:
    """Create ``topic`` with the partition count of ``like`` unless it exists."""
    metadata = admin.list_topics(timeout=STARTUP_ATTEMPT_TIMEOUT_SECONDS)
    if topic in metadata.topics:
        return
    source = metadata.topics.get(like)
    partitions = len(source.partitions) if source is not None and source.partitions else 1
    create_topic(admin, topic, partitions)


def create_topic(
    admin: AdminClient, topic: str, partitions: int, *, config: Mapping[str, str] | None = None
) -> None:
    """Create one topic and wait for it; one that already exists (a race) is fine."""
    new = (
        NewTopic(topic, num_partitions=partitions)
        if config is None
        else NewTopic(topic, num_partitions=partitions, config=dict(config))
    )
    for future in admin.create_topics([new]).values():
        try:
            future.result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def _kafka_error(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def _what_failed(exc: KafkaException, bootstrap: str) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and error.code() in _UNREACHABLE:
        return f"Kafka not reachable at {bootstrap}"
    return f"Kafka topic set-up failed at {bootstrap}"
