"""Per-shipment state (docs/design.md §6): what the rules must remember between scans and timer
ticks.

One immutable value per fulfillment; every transition returns a new one. Field types stay simple
(str, bool, aware UTC datetime, date, tuples of those, ``ShipmentStatus``) so the changelog can
write it as an Avro record. The remembered collections are bounded tuples, oldest first, so one
shipment's state never grows without limit however many scans it gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from consumer.model import ShipmentStatus

MAX_RECENT_EVENT_IDS = 64
"""eventIds remembered for dedup; older replays are still caught by the out-of-order check."""

MAX_NOTIFIED_ETAS = 16
"""ETA values remembered per rule; a shipment whose ETA moved more often than this is rare."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ShipmentState:
    """Everything the rules know about one fulfillment.

    - ``store_id``/``order_id``/``carrier``: from the latest applied scan, so a timer can call Redo
      and pick the carrier's thresholds without a scan in hand.
    - ``last_scan_at``: the latest event time applied; a scan older than it is out of order.
    - ``last_status``: the latest applied known status (an ``unknown`` scan leaves it as it was).
    - ``last_status_sent``: the status of the latest status call emitted (for ``changes``).
    - ``current_eta``: the latest ETA the carrier gave; ``reference_eta``: the ETA that later ones
      are compared with for delayed/arriving_early (see ``engine``).
    - ``notified_delayed``/``notified_early``: ETA values already reported, once per value.
    - ``stall_notified``: the stall-episode flag; a newer scan starts a new episode.
    - ``terminal_at``: when a terminal status was seen (None while not terminal); it silences
      every rule and starts the expiry clock.
    - ``recent_event_ids``: the last eventIds seen, for dropping repeats.
    """

    fulfillment_id: str
    store_id: str
    order_id: str
    last_scan_at: datetime
    carrier: str | None = None
    last_status: ShipmentStatus | None = None
    last_status_sent: ShipmentStatus | None = None
    current_eta: date | None = None
    reference_eta: date | None = None
    notified_delayed: tuple[date, ...] = ()
    notified_early: tuple[date, ...] = ()
    stall_notified: bool = False
    terminal_at: datetime | None = None
    recent_event_ids: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.terminal_at is not None


def remember(items: tuple[_T, ...], item: _T, limit: int) -> tuple[_T, ...]:
    """``items`` with ``item`` appended, keeping only the newest ``limit`` entries."""
    return (*items, item)[-limit:]
