"""Finding and parsing the bundled Avro schemas, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.model import ShipmentStatus
from consumer.serde import schemas as avro_files
from consumer.serde.schemas import load_schema, load_schema_file, load_schema_json, schema_path
from tests.support.paths import REPO

REPO_AVRO = REPO / "avro"


def test_checkout_schema_is_found_when_not_installed_as_a_wheel() -> None:
    assert schema_path("tracking_event") == REPO_AVRO / "tracking_event.avsc"


def test_installed_copy_wins_over_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed, checkout = tmp_path / "avro_schemas", tmp_path / "avro"
    for directory in (installed, checkout):
        directory.mkdir()
        (directory / "x.avsc").write_text("{}")
    monkeypatch.setattr(avro_files, "_SEARCH_DIRS", (installed, checkout))

    assert schema_path("x") == installed / "x.avsc"
    (installed / "x.avsc").unlink()
    assert schema_path("x") == checkout / "x.avsc"


def test_missing_schema_names_where_it_looked() -> None:
    with pytest.raises(FileNotFoundError, match=r"no_such_schema\.avsc not found in .*avro"):
        schema_path("no_such_schema")


def test_parsed_schema_is_cached() -> None:
    assert load_schema("tracking_event") is load_schema("tracking_event")
    assert load_schema("tracking_event")["name"] == "com.redo.tracking.TrackingEvent"


def test_bundled_contract_matches_the_design_and_the_model() -> None:
    schema = load_schema_json("tracking_event")
    fields = {field["name"]: field for field in schema["fields"]}
    status = fields["status"]["type"]

    assert schema["name"] == "TrackingEvent"
    assert list(fields) == [
        "eventId",
        "storeId",
        "orderId",
        "fulfillmentId",
        "carrier",
        "trackingNumber",
        "status",
        "occurredAt",
        "message",
        "location",
        "estimatedDeliveryDate",
    ]
    assert status["name"] == "ShipmentStatus"
    assert status["symbols"] == [s.value for s in ShipmentStatus]
    assert status["default"] == ShipmentStatus.UNKNOWN.value
    assert fields["occurredAt"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["estimatedDeliveryDate"]["type"] == [
        "null",
        {"type": "int", "logicalType": "date"},
    ]
    location = fields["location"]["type"][1]
    assert location["name"] == "Location"
    assert [f["name"] for f in location["fields"]] == ["city", "state", "country", "postalCode"]
    optional = [fields[n] for n in ("carrier", "trackingNumber", "message", "location")]
    optional += location["fields"]
    assert all(f["type"][0] == "null" and f["default"] is None for f in optional)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2]", "must hold a JSON object"),
        ("{oops", "not valid JSON"),
        ('{"type": "record", "name": "R", "fields": [{"name": "a"}]}', "not a valid Avro schema"),
        ("{}", "not a valid Avro schema"),
    ],
)
def test_bad_schema_file_is_a_value_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.avsc"
    path.write_text(content)

    with pytest.raises(ValueError, match=problem):
        load_schema_file(path)
