"""``ProduceError``'s flags come from the librdkafka error code, computed inside consumer.kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from consumer.errors import ProduceError
from consumer.kafka.producer import produce_error


@pytest.mark.parametrize(
    ("code", "permanent", "too_large"),
    [
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, True, False),
        (KafkaError._UNKNOWN_TOPIC, True, False),
        (KafkaError.MSG_SIZE_TOO_LARGE, True, True),
        (KafkaError._MSG_TIMED_OUT, False, False),
        (None, False, False),
    ],
)
def test_flags_follow_the_code(code: int | None, permanent: bool, too_large: bool) -> None:
    error = produce_error("no", topic="t", code=code)
    assert isinstance(error, ProduceError)
    assert (error.permanent, error.too_large, error.topic, error.code) == (
        permanent,
        too_large,
        "t",
        code,
    )


def test_a_too_large_record_is_permanent_whoever_builds_the_error() -> None:
    assert ProduceError("no", topic="t", too_large=True).permanent
