"""The rules file: defaults of docs/design.md §4, per-carrier overrides, and one-line start-up
errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from consumer.errors import ConfigError
from consumer.model import ShipmentStatus
from consumer.rules import RulesConfig, Thresholds, load_rules
from tests.support.paths import REPO

REPO_ROOT = REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_the_design_defaults() -> None:
    rules = load_rules(None)
    assert rules == RulesConfig()
    thresholds = rules.for_carrier("UPS")
    assert thresholds.stall_in_transit == timedelta(hours=72)
    assert thresholds.stall_out_for_delivery == timedelta(hours=24)
    assert thresholds.delay_min_days == 1
    assert thresholds.early_min_days == 1
    assert thresholds.eta_grace == timedelta(0)
    assert thresholds.expire_after_terminal == timedelta(days=7)
    assert thresholds.expire_after_last_scan == timedelta(days=30)


def test_empty_file_and_empty_sections_give_the_defaults(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "")) == RulesConfig()
    assert load_rules(write(tmp_path, "defaults:\ncarriers:\n")) == RulesConfig()


def test_carrier_overrides_merge_over_the_file_defaults(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            "defaults: {stall_in_transit: 60h, eta_grace: 90m}\n"
            "carriers:\n"
            "  UPS: {stall_in_transit: 48h}\n"
            "  fedex: {delay_min_days: 3, stall_out_for_delivery: PT12H}\n",
        )
    )
    assert rules.defaults.stall_in_transit == timedelta(hours=60)
    assert rules.defaults.stall_out_for_delivery == timedelta(hours=24)
    ups = rules.for_carrier("UPS")
    assert ups.stall_in_transit == timedelta(hours=48)
    assert ups.eta_grace == timedelta(minutes=90)
    fedex = rules.for_carrier("FedEx")
    assert fedex.stall_in_transit == timedelta(hours=60)
    assert fedex.stall_out_for_delivery == timedelta(hours=12)
    assert fedex.delay_min_days == 3


def test_carrier_lookup_ignores_case_and_falls_back_to_defaults(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "carriers: {UPS: {stall_in_transit: 2d}}\n"))
    for name in ("UPS", "ups", " Ups "):
        assert rules.for_carrier(name).stall_in_transit == timedelta(days=2)
    assert rules.for_carrier("DHL") is rules.defaults
    assert rules.for_carrier(None) is rules.defaults


def test_a_config_built_in_code_also_matches_carriers_by_any_case() -> None:
    ups = Thresholds(stall_in_transit=timedelta(hours=48))
    assert RulesConfig(carriers={"UPS": ups}).for_carrier("ups") is ups


def test_carrier_resolutions_are_cached_within_bounds() -> None:
    """for_carrier remembers its answers (a hot path), but the carrier is untrusted input: many
    spellings or a huge one never grow the cache past its bounds, and answers stay right."""
    ups = Thresholds(stall_in_transit=timedelta(days=2))
    rules = RulesConfig(carriers={"UPS": ups})

    for number in range(1_000):
        assert rules.for_carrier(f"carrier-{number}") is rules.defaults
        assert rules.for_carrier(" ups ") is ups
    assert rules.for_carrier("x" * 100_000) is rules.defaults
    assert rules.for_carrier("UPS" + " " * 100_000) is ups

    cached = rules._resolved
    assert 0 < len(cached) <= 256
    assert all(len(carrier) <= 64 for carrier in cached)
    assert RulesConfig(carriers={"UPS": ups}) == rules  # the cache is not part of the value
    assert "_resolved" not in repr(rules)


def test_zero_grace_may_omit_the_unit(tmp_path: Path) -> None:
    assert load_rules(
        write(tmp_path, "defaults: {eta_grace: 0}\n")
    ).defaults.eta_grace == timedelta(0)


def test_stall_threshold_applies_only_to_moving_statuses() -> None:
    thresholds = Thresholds(
        stall_in_transit=timedelta(hours=5), stall_out_for_delivery=timedelta(1)
    )
    assert thresholds.stall_threshold(ShipmentStatus.IN_TRANSIT) == timedelta(hours=5)
    assert thresholds.stall_threshold(ShipmentStatus.OUT_FOR_DELIVERY) == timedelta(days=1)
    for status in (ShipmentStatus.PRE_TRANSIT, ShipmentStatus.AVAILABLE_FOR_PICKUP, None):
        assert thresholds.stall_threshold(status) is None


def test_the_example_file_in_the_repo_is_valid() -> None:
    rules = load_rules(REPO_ROOT / "rules.example.yaml")
    assert rules.defaults == Thresholds()
    assert rules.for_carrier("ups").stall_in_transit == timedelta(hours=48)
    assert rules.for_carrier("usps").eta_grace == timedelta(hours=6)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("defaults: {stall_in_transit: 72x}\n", "defaults.stall_in_transit", "needs a unit"),
        ("defaults: {stall_in_transit: 72}\n", "defaults.stall_in_transit", "needs a unit"),
        ("defaults: {stall_in_transit: yes}\n", "defaults.stall_in_transit", "not a boolean"),
        ("defaults: {stall_in_transit: 1.2.3h}\n", "defaults.stall_in_transit", "timedelta"),
        ("defaults: {stall_in_transit: 0h}\n", "defaults.stall_in_transit", "greater than zero"),
        ("defaults: {eta_grace: -1h}\n", "defaults.eta_grace", "must not be negative"),
        ("defaults: {stall_in_transit: null}\n", "defaults.stall_in_transit", "timedelta"),
        (
            "defaults: {delay_min_days: 0}\n",
            "defaults.delay_min_days",
            "greater than or equal to 1",
        ),
        ("defaults: {early_min_days: '2'}\n", "defaults.early_min_days", "valid integer"),
        ("defaults: {stall_in_transt: 72h}\n", "defaults.stall_in_transt", "unknown key"),
        ("carriers: {UPS: {stall: 1h}}\n", "carriers.UPS.stall", "unknown key"),
        (
            "carriers: {UPS: {stall_in_transit: -2h}}\n",
            "carriers.UPS.stall_in_transit",
            "than zero",
        ),
        ("carriers: [UPS]\n", "carriers", "valid dictionary"),
        ("carrier: {UPS: {}}\n", "carrier", "unknown key"),
        ("carriers: {UPS: {}, ups: {}}\n", "carriers.ups", "carrier listed twice"),
        ("- defaults\n", "top level", "expected a mapping"),
        ("defaults: {stall_in_transit: 72h\n", "line 2, column 1", "expected ',' or '}'"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_key_and_problem(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    error = caught.value
    assert error.setting == "RULES_FILE"
    assert error.problem.startswith(f"{path}: {where}: "), error.problem
    assert what in error.problem
    assert "\n" not in str(error)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert caught.value.setting == "RULES_FILE"
    assert caught.value.problem.startswith(f"{path}: cannot read: ")
