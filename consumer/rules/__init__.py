"""The pure rules engine: per-shipment state, thresholds, and the transitions of DESIGN §3 to §5."""

from consumer.rules.config import RulesConfig, Thresholds, load_rules
from consumer.rules.engine import (
    END_OF_TIME,
    ForwardPolicy,
    ScanTransition,
    Transition,
    Verdict,
    apply_scan,
    expires_at,
    fire_timers,
    is_stale,
    later,
    next_deadline,
    process_scan,
)
from consumer.rules.state import ShipmentState

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
