"""The pure rules engine: per-shipment state, thresholds, and the transitions of docs/design.md
§3 to §6."""

from consumer.rules.calls import is_stale
from consumer.rules.config import RulesConfig, Thresholds, load_rules
from consumer.rules.deadlines import END_OF_TIME, expires_at, later, next_deadline
from consumer.rules.engine import apply_scan, fire_timers, process_scan
from consumer.rules.state import ShipmentState
from consumer.rules.transition import ForwardPolicy, ScanTransition, Transition, Verdict

__all__ = [
    "END_OF_TIME",
    "ForwardPolicy",
    "RulesConfig",
    "ScanTransition",
    "ShipmentState",
    "Thresholds",
    "Transition",
    "Verdict",
    "apply_scan",
    "expires_at",
    "fire_timers",
    "is_stale",
    "later",
    "load_rules",
    "next_deadline",
    "process_scan",
]
