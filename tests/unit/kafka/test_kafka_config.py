"""The librdkafka dicts: our defaults, the pass-through winning over them, the restore reader's."""

from __future__ import annotations

import logging

import pytest

from consumer.errors import ConfigError
from consumer.kafka.config import (
    RESTORE_FETCH_BYTES,
    admin_config,
    common_config,
    consumer_config,
    librdkafka_overrides,
    producer_config,
    restore_config,
    starts_at_end,
)

ENV = {"KAFKA_BOOTSTRAP_SERVERS": "ignored", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}


def test_common_settings_carry_the_brokers_the_logger_and_the_pass_through() -> None:
    common = common_config("b:9092", ENV)
    assert common == {
        "bootstrap.servers": "b:9092",
        "logger": logging.getLogger("librdkafka"),
        "security.protocol": "SASL_SSL",
    }
    assert admin_config(common) == common and admin_config(common) is not common


def test_the_consumer_commits_by_hand_and_the_pass_through_wins() -> None:
    config = consumer_config({"auto.offset.reset": "latest"}, "g")
    assert config["group.id"] == "g" and config["enable.auto.commit"] == "false"
    assert config["enable.auto.offset.store"] == "false"
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["auto.offset.reset"] == "latest" and starts_at_end(config)
    assert not starts_at_end(consumer_config({}, "g"))


def test_the_restore_reader_fetches_big_and_commits_nothing() -> None:
    config = restore_config(consumer_config({"enable.auto.commit": "true"}, "g"))
    assert config["enable.auto.commit"] == "false" and config["enable.partition.eof"] == "false"
    assert config["fetch.max.bytes"] == config["max.partition.fetch.bytes"] == RESTORE_FETCH_BYTES


def test_the_producer_is_idempotent_unless_overridden() -> None:
    assert producer_config({})["enable.idempotence"] == "true"
    assert producer_config({"linger.ms": "5"})["linger.ms"] == "5"


def test_only_the_cooperative_assignment_strategy_is_accepted() -> None:
    with pytest.raises(ConfigError, match="KAFKA_PARTITION_ASSIGNMENT_STRATEGY"):
        librdkafka_overrides({"KAFKA_PARTITION_ASSIGNMENT_STRATEGY": "range"})
