"""The chart's observability artefacts agree with the code they describe.

The Grafana dashboard and the alert rules name metrics by string; a renamed metric would leave an
empty panel or an alert that can never fire, and nothing else would notice. These tests derive the
exported sample names from the prometheus_client objects in consumer.ops.metrics and check every
name the dashboard and the rules use against them. They also check that each alert has promtool unit
tests, and that the chart's environment variables and rules file are ones the consumer accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from consumer.config import Settings
from consumer.ops import metrics
from consumer.rules.config import load_rules
from tests.support.paths import REPO

ROOT = REPO
CHART = ROOT / "helm" / "tracking-consumer"
DASHBOARD = CHART / "dashboards" / "tracking-consumer.json"
ALERT_RULES = CHART / "files" / "alerts.yaml"
ALERT_TESTS = ROOT / "helm" / "alerts" / "alerts_test.yaml"
DEPLOYMENT_TEMPLATE = CHART / "templates" / "deployment.yaml"
VALUES_FILES = (CHART / "values.yaml", ROOT / "helm" / "ci" / "values-all-on.yaml")

# Metrics the alerts may use that other exporters provide: kube-state-metrics' pod readiness is
# the only way to see a pod that fails /readyz. The dashboard uses none.
EXTERNAL_METRICS = frozenset({"kube_pod_status_ready"})

# Sample names prometheus_client exposes for one metric family, by family type.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# An identifier not inside a number or a $variable, not followed by "(" (a function call).
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:])(?!\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan", "atan2"}
)
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*$", re.DOTALL)


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana variables allowed)."""
    text = _STRINGS.sub(" ", expr)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def exported_sample_names() -> set[str]:
    """Every sample name the consumer's registered metrics can expose."""
    registered = {family.name for family in REGISTRY.collect()}
    names: set[str] = set()
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        for family in obj.describe():
            assert family.name in registered, f"{family.name} is not in the default registry"
            assert family.type in _SUFFIXES, f"{family.name}: unhandled type {family.type}"
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in _walk_panels(board["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(query)
        assert match, f"variable {variable['name']}: expected label_values(...), got {query!r}"
        exprs.append(match["selector"])
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


# --- the extractor itself, so the checks below cannot pass by finding nothing -----------------


def test_metric_names_in_ignores_functions_labels_keywords_and_variables() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"x|y", le!="+Inf"}'
        "[$__rate_interval] offset 1h))) / on (namespace) group_left b_total > bool 1e3"
        ' and ignoring(pod) rec:ord:ed unless label_replace(d, "dst", "$1", "src", "(.*)")'
        " or sum(e) without (pod) or vector(0)"
    )
    assert metric_names_in(expr) == {"a_bucket", "b_total", "rec:ord:ed", "d", "e"}


def test_exported_sample_names_expand_each_family_type() -> None:
    names = exported_sample_names()
    assert "tracking_records_done_total" in names
    assert "tracking_records_done" not in names
    assert "tracking_consumer_lag_records" in names
    assert {
        "tracking_redo_request_duration_seconds_bucket",
        "tracking_redo_request_duration_seconds_count",
        "tracking_redo_request_duration_seconds_sum",
    } <= names
    assert "tracking_redo_request_duration_seconds" not in names


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_uses_only_exported_metrics() -> None:
    exported = exported_sample_names()
    used = {name for expr in dashboard_expressions() for name in metric_names_in(expr)}
    assert used, "no metric found in the dashboard"
    assert used - exported == set(), "dashboard metrics the consumer does not export"


def test_dashboard_shows_every_required_signal() -> None:
    used = {name for expr in dashboard_expressions() for name in metric_names_in(expr)}
    required = {
        "tracking_consumer_lag_records",
        "tracking_records_done_total",
        "tracking_redo_requests_total",
        "tracking_redo_request_duration_seconds_bucket",
        "tracking_event_to_call_latency_seconds_bucket",
        "tracking_redo_in_flight_requests",
        "tracking_paused_partitions",
        "tracking_dead_letters_total",
        "tracking_rule_firings_total",
        "tracking_shipments_in_state",
        "tracking_committed_offset",
        "tracking_redo_auth_blocked",
        "tracking_redo_circuit_open",
    }
    assert required - used == set(), "signals missing from the dashboard"


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in _walk_panels(board["panels"])]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in _walk_panels(board["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


# --- alert rules ------------------------------------------------------------------------------


def test_alert_rules_use_only_exported_recorded_or_known_external_metrics() -> None:
    rules = alert_rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    used = {name for rule in rules for name in metric_names_in(rule["expr"])}
    assert used, "no metric found in the alert rules"
    unknown = used - exported_sample_names() - recorded - EXTERNAL_METRICS
    assert unknown == set(), "alert metrics the consumer does not export"


def test_alerts_cover_the_required_conditions() -> None:
    alerts = {rule["alert"] for rule in alert_rules() if "alert" in rule}
    assert {
        "TrackingConsumerLagGrowing",
        "TrackingConsumerNoCommittedProgress",
        "TrackingRedoErrorRatioHigh",
        "TrackingDeadLetterRateHigh",
        "TrackingRedoAuthBlocked",
        "TrackingConsumerPodNotReady",
    } <= alerts


def test_every_alert_has_labels_annotations_and_a_firing_and_quiet_unit_test() -> None:
    suite = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    assert suite["rule_files"] == ["../tracking-consumer/files/alerts.yaml"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in suite["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    for rule in alert_rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert name in fires, f"{name}: no unit test where it fires"
        assert name in quiet, f"{name}: no unit test where it stays quiet"


# --- chart values against the consumer's own configuration -----------------------------------


def test_deployment_sets_only_environment_variables_the_settings_know() -> None:
    template = DEPLOYMENT_TEMPLATE.read_text(encoding="utf-8")
    env_names = set(re.findall(r"^\s*- name: ([A-Z][A-Z0-9_]+)\s*$", template, re.MULTILINE))
    assert {"KAFKA_BOOTSTRAP_SERVERS", "REDO_API_SECRET_FILE", "RULES_FILE"} <= env_names
    assert {name.lower() for name in env_names} - set(Settings.model_fields) == set()


@pytest.mark.parametrize("values_file", VALUES_FILES, ids=lambda path: path.name)
def test_chart_rules_values_are_a_valid_rules_file(values_file: Path, tmp_path: Path) -> None:
    values = yaml.safe_load(values_file.read_text(encoding="utf-8"))
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(values["rules"]), encoding="utf-8")
    config = load_rules(rules_file)
    assert config.defaults.stall_in_transit.total_seconds() == 72 * 3600
