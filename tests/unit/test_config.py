from datetime import timedelta

import pytest

from consumer.config import load_settings
from consumer.errors import ConfigError
from consumer.kafka.config import librdkafka_overrides

BASE = {
    "KAFKA_BOOTSTRAP_SERVERS": "b:9092",
    "KAFKA_TOPIC": "scans",
    "KAFKA_GROUP_ID": "g",
    "REDO_API_SECRET": "x",
}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.redo_api_url == "https://api.getredo.com/v2.2"
    assert settings.forward_scans == "all"
    assert settings.max_scan_age == timedelta(days=7)
    assert settings.dead_letter_topic == "scans.dlq"
    assert settings.changelog_topic == "g.scans.state"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("3600", timedelta(hours=1)),
        ("72h", timedelta(hours=72)),
        ("7d", timedelta(days=7)),
        ("15m", timedelta(minutes=15)),
        ("P1D", timedelta(days=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert load_settings({**BASE, "MAX_SCAN_AGE": text}).max_scan_age == expected


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"AVRO_FRAMING": "confluent"}, "SCHEMA_REGISTRY_URL"),
        ({"MAX_SCAN_AGE": "-5"}, "MAX_SCAN_AGE"),
        ({"MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_invalid_settings_name_the_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **env})
    assert caught.value.setting == setting


def test_secret_is_required_one_way_or_the_other() -> None:
    env = {k: v for k, v in BASE.items() if k != "REDO_API_SECRET"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.setting == "REDO_API_SECRET"
    assert load_settings({**env, "REDO_API_SECRET_FILE": "/run/secret"}).redo_api_secret is None


def test_unknown_kafka_variables_pass_through_to_librdkafka() -> None:
    env = {
        **BASE,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_GROUP_INSTANCE_ID": "pod-0",
        "OTHER": "x",
    }
    assert librdkafka_overrides(env) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "group.instance.id": "pod-0",
    }
