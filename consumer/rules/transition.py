"""What the engine returns for one input: the shipment's new state and the calls to send."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from consumer.model import RedoCall
from consumer.rules.state import ShipmentState

ForwardPolicy = Literal["all", "changes"]
"""``FORWARD_SCANS``: a status call for every scan, or only when the status differs from the last
one sent."""


class Verdict(StrEnum):
    """What happened to a scan; the caller counts ``duplicate`` and ``out_of_order``."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class Transition:
    """The new state and the calls to send, in order, for one fulfillment."""

    state: ShipmentState
    calls: tuple[RedoCall, ...]


@dataclass(frozen=True, slots=True)
class ScanTransition(Transition):
    """A ``Transition`` caused by a scan, with the scan's verdict."""

    verdict: Verdict
