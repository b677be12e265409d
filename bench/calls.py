"""The exact Redo request every contender sends for a scan.

The status call of docs/design.md §3 (every scan but ``unknown``), rendered by the consumer's own
``consumer.redo.payload``: the naive loop, the Quix app and the HTTP ceiling put the same bytes
on the wire as tracking-consumer, so the benchmark compares how calls are driven, not what they
contain. The rules' event calls are tracking-consumer's alone; the others do not have rules.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumer.model import CallKind, RedoCall, ShipmentStatus, TrackingEvent
from consumer.redo.payload import iso_utc, request_body, request_path

Request = tuple[str, dict[str, Any]]


def redo_request(event: TrackingEvent) -> Request | None:
    """``(path, JSON body)`` of the status call for ``event``; None for an ``unknown`` scan."""
    if event.status is ShipmentStatus.UNKNOWN:
        return None
    call = RedoCall(
        kind=CallKind.STATUS,
        store_id=event.store_id,
        order_id=event.order_id,
        fulfillment_id=event.fulfillment_id,
        status=event.status.value,
        at=event.occurred_at,
        message=event.message,
        location=event.location,
        estimated_delivery_date=event.estimated_delivery_date,
    )
    return request_path(call), request_body(call)


def scan_key(event: TrackingEvent) -> tuple[str, str]:
    """What ties a scan to its call: the fulfillment and the scan time as the body carries it."""
    return event.fulfillment_id, iso_utc(event.occurred_at)


def call_key(fulfillment_id: str, body: dict[str, Any]) -> tuple[str, str]:
    """``scan_key`` of the scan behind a call the sandbox recorded."""
    return fulfillment_id, str(body.get("datetime"))


@dataclass(frozen=True)
class Target:
    """Where calls go and the headers they carry."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


@dataclass(frozen=True)
class KafkaContenderArgs:
    """Command line of a contender that reads the topic itself (naive loop, Quix app)."""

    bootstrap: str
    topic: str
    group: str
    target: Target


def parse_kafka_contender(prog: str, argv: list[str] | None = None) -> KafkaContenderArgs:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--url", required=True, help="the sandbox's base URL")
    parser.add_argument("--secret-file", required=True, type=Path)
    args = parser.parse_args(argv)
    target = Target(args.url.rstrip("/"), args.secret_file.read_text().strip())
    return KafkaContenderArgs(args.bootstrap, args.topic, args.group, target)
