"""What every processing stage is configured with: the rules, the limits, the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from consumer.rules import ForwardPolicy, RulesConfig

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ProcessingSettings:
    rules: RulesConfig
    forward: ForwardPolicy
    max_scan_age: timedelta
    max_clock_skew: timedelta
    max_buffered_per_partition: int
