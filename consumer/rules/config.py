"""Rule thresholds: the defaults of docs/design.md §4, overridable per carrier from a YAML rules
file.

The file (``RULES_FILE``) is validated once at start-up; a bad file is a ``ConfigError`` whose one
line names the file, the key path and the problem, so the process exits 2 before consuming::

    defaults:                     # every key optional; omitted keys keep the built-in default
      stall_in_transit: 72h
      stall_out_for_delivery: 24h
      delay_min_days: 1
      early_min_days: 1
      eta_grace: 0h
      expire_after_terminal: 7d
      expire_after_last_scan: 30d
    carriers:                     # per-carrier overrides, merged over ``defaults``
      UPS: {stall_in_transit: 48h}

Carrier names match case-insensitively. Durations need a unit (``90s``, ``15m``, ``72h``, ``7d``,
or ISO 8601 ``PT72H``): a bare ``72`` would silently mean seconds, so only ``0`` may omit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
)

from consumer.config import Duration
from consumer.errors import ConfigError
from consumer.model import ShipmentStatus

_SETTING = "RULES_FILE"
_UNITS = ("s", "m", "h", "d")


def _require_unit(value: object) -> object:
    """Reject unit-less durations (other than zero) and booleans before ``Duration`` parses."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 72h, not a boolean")
    if isinstance(value, int | float):
        if value != 0:
            raise ValueError(f"duration {value} needs a unit (s, m, h or d), e.g. {value}h")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text != "0" and not text.endswith(_UNITS):
            raise ValueError(f"duration {value!r} needs a unit (s, m, h or d), e.g. 72h")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be greater than zero")
    return value


_RuleDuration = Annotated[Duration, BeforeValidator(_require_unit)]
PositiveDuration = Annotated[_RuleDuration, AfterValidator(_positive)]
NonNegativeDuration = Annotated[_RuleDuration, AfterValidator(_not_negative)]
Days = Annotated[StrictInt, Field(ge=1)]


class Thresholds(BaseModel):
    """Every threshold of docs/design.md §4 for one carrier (or the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stall_in_transit: PositiveDuration = timedelta(hours=72)
    stall_out_for_delivery: PositiveDuration = timedelta(hours=24)
    delay_min_days: Days = 1
    early_min_days: Days = 1
    eta_grace: NonNegativeDuration = timedelta(0)
    expire_after_terminal: PositiveDuration = timedelta(days=7)
    expire_after_last_scan: PositiveDuration = timedelta(days=30)

    def stall_threshold(self, status: ShipmentStatus | None) -> timedelta | None:
        """The no-scan threshold for ``status``, or None when the stall rule does not apply."""
        if status is ShipmentStatus.IN_TRANSIT:
            return self.stall_in_transit
        if status is ShipmentStatus.OUT_FOR_DELIVERY:
            return self.stall_out_for_delivery
        return None


def _carrier_key(carrier: str) -> str:
    return carrier.strip().casefold()


_RESOLVED_MAX = 256
"""Carrier spellings whose thresholds ``for_carrier`` remembers: real streams have a handful."""
_RESOLVED_KEY_MAX = 64
"""Longer carrier values (hostile: a carrier name is a short word) are resolved, never kept."""


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """The effective thresholds: ``defaults`` and a complete set per carrier (case-folded)."""

    defaults: Thresholds = field(default_factory=Thresholds)
    carriers: Mapping[str, Thresholds] = field(default_factory=dict)
    # for_carrier's answers per carrier as spelled in the events: it is called 7.6 times an
    # event (each fire_timers, next_deadline, expires_at), and strip + casefold + lookup each
    # time were 12 % of the rules' profiled CPU (4 % of the pipeline's). The carrier is untrusted
    # input, so the cache is bounded in entries and key length. Not part of the configuration's
    # value: left out of repr (the store's rules_tag) and ==.
    _resolved: dict[str, Thresholds] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        folded = {_carrier_key(name): thresholds for name, thresholds in self.carriers.items()}
        object.__setattr__(self, "carriers", folded)

    def for_carrier(self, carrier: str | None) -> Thresholds:
        """The thresholds for ``carrier`` (any case); the defaults for an unknown or no carrier."""
        if carrier is None:
            return self.defaults
        resolved = self._resolved.get(carrier)
        if resolved is None:
            resolved = self.carriers.get(_carrier_key(carrier), self.defaults)
            if len(carrier) <= _RESOLVED_KEY_MAX:
                if len(self._resolved) >= _RESOLVED_MAX:
                    self._resolved.clear()  # a flood of spellings: start again, stay bounded
                self._resolved[carrier] = resolved
        return resolved


class _RulesFile(BaseModel):
    """The file's shape; ``model_fields_set`` of each section tells which keys it overrides."""

    model_config = ConfigDict(extra="forbid")

    defaults: Thresholds = Field(default_factory=Thresholds)
    carriers: dict[str, Thresholds] = Field(default_factory=dict)

    @field_validator("defaults", "carriers", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        """A section left empty in YAML (``carriers:``) reads as null: treat it as no overrides."""
        return {} if value is None else value


def _merge(base: Thresholds, override: Thresholds) -> Thresholds:
    return base.model_copy(
        update={name: getattr(override, name) for name in override.model_fields_set}
    )


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_SETTING, f"{path}: cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError(_SETTING, f"{path}: {where}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise ConfigError(_SETTING, f"{path}: YAML: {problem}") from None


def _validation_problem(path: Path, exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "top level"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return ConfigError(_SETTING, f"{path}: {where}: {' '.join(message.split())}")


def load_rules(path: Path | None) -> RulesConfig:
    """Read and validate the rules file; no file means the built-in defaults.

    Raises ``ConfigError("RULES_FILE", "<file>: <where>: <what>")`` for an unreadable file, bad
    YAML, an unknown key, a wrong type, a bad or negative duration, or two spellings of one carrier.
    """
    if path is None:
        return RulesConfig()
    raw = _read_yaml(path)
    if raw is None:
        return RulesConfig()
    if not isinstance(raw, dict):
        raise ConfigError(_SETTING, f"{path}: top level: expected a mapping of defaults/carriers")
    try:
        parsed = _RulesFile.model_validate(raw)
    except ValidationError as exc:
        raise _validation_problem(path, exc) from None
    defaults = parsed.defaults
    carriers: dict[str, Thresholds] = {}
    for name, override in parsed.carriers.items():
        key = _carrier_key(name)
        if key in carriers:
            raise ConfigError(_SETTING, f"{path}: carriers.{name}: carrier listed twice")
        carriers[key] = _merge(defaults, override)
    return RulesConfig(defaults=defaults, carriers=carriers)
