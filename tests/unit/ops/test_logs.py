import json
import logging

from consumer.ops.logs import JsonFormatter, register_secret


def format_record(message: str, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return dict(json.loads(JsonFormatter().format(record)))


def test_one_json_object_with_context_fields() -> None:
    entry = format_record("call failed", fulfillment_id="f-1", partition=2, offset=17)
    assert entry["message"] == "call failed"
    assert entry["level"] == "WARNING"
    assert (entry["fulfillment_id"], entry["partition"], entry["offset"]) == ("f-1", 2, 17)


def test_registered_secrets_are_masked_everywhere() -> None:
    register_secret("tok-very-secret-123")
    entry = format_record("header was Bearer tok-very-secret-123", error="tok-very-secret-123!")
    assert "tok-very-secret-123" not in json.dumps(entry)
    assert entry["message"] == "header was Bearer ***"
