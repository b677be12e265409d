"""How a record's (or a timer's, or a call's) processing ended: one enum for every stage.

The values are the ``outcome`` label of ``tracking_records_done_total``; dashboards and alerts
read them, so they never change. ``ABANDONED`` is the one outcome that is not final: the work was
given up (revoke, shutdown), its record stays undone and the next owner replays it.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SENT = "sent"
    NO_CALL = "no_call"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE = "duplicate"
    STALE = "stale"
    OUT_OF_ORDER = "out_of_order"
    EXPIRED = "expired"
    TIMERS = "timers"
    REWRITTEN = "rewritten"
    ABANDONED = "abandoned"
