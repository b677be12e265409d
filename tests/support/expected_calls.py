"""What the sandbox says Redo got, and where each fulfillment's records sit in the topic: the
yardsticks the broker tests hold against ``devkit.expectations`` (what Redo must get)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from consumer.model import AutomationEvent
from devkit.kafka_tools import read_topic
from devkit.sandbox import SandboxControl

Body = dict[str, Any]

# Rule firings (event calls) are the rules engine's business; these tests check the status calls.
EVENT_STATUSES = frozenset(event.value for event in AutomationEvent)


def received_bodies(control: SandboxControl, *, events: bool = False) -> dict[str, list[Body]]:
    """Per fulfillment, the bodies the sandbox accepted (200), in arrival order: status calls,
    or with ``events`` the rule firings."""
    received: dict[str, list[Body]] = defaultdict(list)
    for call in control.calls(status_code=200):
        if (call["body"]["status"] in EVENT_STATUSES) == events:
            received[call["fulfillment_id"]].append(call["body"])
    return received


def first_occurrences(bodies: list[Body]) -> list[Body]:
    """``bodies`` without repeats, each kept where it first arrived (at-least-once delivery)."""
    seen: set[str] = set()
    unique = []
    for body in bodies:
        fingerprint = json.dumps(body, sort_keys=True)
        if fingerprint not in seen:
            seen.add(fingerprint)
            unique.append(body)
    return unique


def record_positions(bootstrap: str, topic: str, expected: int) -> dict[str, list[tuple[int, int]]]:
    """Per record key (the fulfillment ID), its records' ``(partition, offset)`` in offset order."""
    positions: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for message in read_topic(bootstrap, topic, expected):
        key = message.key()
        positions[key.decode() if key else ""].append((message.partition(), message.offset()))
    return {key: sorted(found) for key, found in positions.items()}
