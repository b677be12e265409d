"""A ``RedoCall`` for tests of the Redo payload and client: the defaults, with some fields set."""

from __future__ import annotations

from datetime import UTC, datetime

from consumer.model import CallKind, RedoCall

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_call(**overrides: object) -> RedoCall:
    fields: dict[str, object] = {
        "kind": CallKind.STATUS,
        "store_id": "store-1",
        "order_id": "order-1",
        "fulfillment_id": "ful-1",
        "status": "in_transit",
        "at": AT,
    }
    fields.update(overrides)
    return RedoCall(**fields)  # type: ignore[arg-type]
