"""``ShipmentState`` ⇄ changelog bytes: one format byte, then Avro (``avro/shipment_state.avsc``).

The format byte names the writer schema, so a later schema version can still read records an
older consumer wrote (Avro resolution needs the writer's schema, and the changelog keeps records
for as long as shipments live).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro

from consumer.avro_files import load_schema
from consumer.model import ShipmentStatus
from consumer.rules.state import ShipmentState

FORMAT_V1 = 1
_SCHEMA_NAME = "shipment_state"


class StateDecodeError(ValueError):
    """A changelog record this version cannot read."""


def encode_state(state: ShipmentState) -> bytes:
    out = io.BytesIO()
    out.write(bytes([FORMAT_V1]))
    fastavro.schemaless_writer(out, load_schema(_SCHEMA_NAME), _to_record(state))
    return out.getvalue()


def decode_state(value: bytes) -> ShipmentState:
    if not value or value[0] != FORMAT_V1:
        raise StateDecodeError(f"unknown state format byte {value[:1]!r}")
    schema = load_schema(_SCHEMA_NAME)
    try:
        record = fastavro.schemaless_reader(io.BytesIO(value[1:]), schema, schema)
    except (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise StateDecodeError(f"corrupt state record: {exc}") from exc
    assert isinstance(record, dict)
    return _from_record(record)


def _to_record(state: ShipmentState) -> dict[str, Any]:
    return {
        "fulfillmentId": state.fulfillment_id,
        "storeId": state.store_id,
        "orderId": state.order_id,
        "lastScanAt": state.last_scan_at,
        "carrier": state.carrier,
        "lastStatus": state.last_status,
        "lastStatusSent": state.last_status_sent,
        "currentEta": state.current_eta,
        "referenceEta": state.reference_eta,
        "notifiedDelayed": list(state.notified_delayed),
        "notifiedEarly": list(state.notified_early),
        "stallNotified": state.stall_notified,
        "terminalAt": state.terminal_at,
        "recentEventIds": list(state.recent_event_ids),
    }


def _from_record(record: dict[str, Any]) -> ShipmentState:
    return ShipmentState(
        fulfillment_id=record["fulfillmentId"],
        store_id=record["storeId"],
        order_id=record["orderId"],
        last_scan_at=_utc(record["lastScanAt"]),
        carrier=record["carrier"],
        last_status=_status(record["lastStatus"]),
        last_status_sent=_status(record["lastStatusSent"]),
        current_eta=record["currentEta"],
        reference_eta=record["referenceEta"],
        notified_delayed=tuple(record["notifiedDelayed"]),
        notified_early=tuple(record["notifiedEarly"]),
        stall_notified=record["stallNotified"],
        terminal_at=_utc(record["terminalAt"]) if record["terminalAt"] is not None else None,
        recent_event_ids=tuple(record["recentEventIds"]),
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _status(value: str | None) -> ShipmentStatus | None:
    if value is None:
        return None
    try:
        return ShipmentStatus(value)
    except ValueError:
        return ShipmentStatus.UNKNOWN
