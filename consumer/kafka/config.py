"""Every librdkafka configuration dict, built here and nowhere else.

``common_config`` is what every client shares (bootstrap, logger, the ``KAFKA_*`` pass-through);
each client's settings start from it: the input consumer (``consumer_config``), the changelog's
restore reader (``restore_config``), the producer (``producer_config``) and the admin client
(``admin_config``). The pass-through wins over our defaults, except for the assignment strategy,
which must stay cooperative (``librdkafka_overrides`` refuses another one).

No confluent_kafka import: ``consumer.cli`` validates the pass-through before the heavy imports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from consumer.config import Settings
from consumer.errors import ConfigError

RESTORE_FETCH_BYTES = 16 * 2**20

_KNOWN_KAFKA_SETTINGS = frozenset(
    name.upper() for name in Settings.model_fields if name.startswith("kafka_")
)


def librdkafka_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """librdkafka settings passed through from ``KAFKA_*`` variables that are not our own.

    The assignment strategy must stay cooperative: partitions are assigned paused and resumed
    after their state is restored, which relies on incremental assignment."""
    env = os.environ if environ is None else environ
    overrides = {
        name[len("KAFKA_") :].lower().replace("_", "."): value
        for name, value in env.items()
        if name.upper().startswith("KAFKA_") and name.upper() not in _KNOWN_KAFKA_SETTINGS
    }
    strategy = overrides.get("partition.assignment.strategy", "cooperative-sticky")
    if strategy != "cooperative-sticky":
        raise ConfigError(
            "KAFKA_PARTITION_ASSIGNMENT_STRATEGY", "only cooperative-sticky is supported"
        )
    return overrides


def common_config(
    bootstrap_servers: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What every client shares: the brokers, librdkafka's log lines in ours, the pass-through."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "logger": logging.getLogger("librdkafka"),
        **librdkafka_overrides(environ),
    }


def consumer_config(common: Mapping[str, Any], group_id: str) -> dict[str, Any]:
    """librdkafka settings: manual commits of done offsets only, cooperative rebalancing.
    ``common`` (bootstrap, logger, the KAFKA_* pass-through) wins over these defaults."""
    return {
        "group.id": group_id,
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "statistics.interval.ms": 5000,
        **common,
    }


def restore_config(group_config: Mapping[str, Any]) -> dict[str, Any]:
    """The changelog reader: the group's settings (it never joins the group: it only assigns),
    no commits, no end-of-partition events."""
    return {
        **group_config,
        "enable.auto.commit": "false",
        "enable.partition.eof": "false",
        # A restore reads a partition from its start as fast as it can: 16 MiB fetches
        # (~70,000 states) instead of the default 1 MiB, so fewer round trips to the broker.
        "max.partition.fetch.bytes": RESTORE_FETCH_BYTES,
        "fetch.max.bytes": RESTORE_FETCH_BYTES,
    }


def producer_config(common: Mapping[str, Any]) -> dict[str, Any]:
    """Dead letters and state writes: idempotent, acknowledged by every in-sync replica."""
    # linger.ms: bigger batches cost the broker less CPU; a state ack waits up to 20 ms,
    # which holds back only that shipment's next record and the commit.
    return {"enable.idempotence": "true", "acks": "all", "linger.ms": "20", **common}


def admin_config(common: Mapping[str, Any]) -> dict[str, Any]:
    """Start-up topic checks and creation: the common settings as they are."""
    return dict(common)


def starts_at_end(config: Mapping[str, Any]) -> bool:
    """A partition without a committed offset starts at the log end (``auto.offset.reset``)."""
    reset = str(config.get("auto.offset.reset", "earliest")).lower()
    return reset in ("latest", "largest", "end")
