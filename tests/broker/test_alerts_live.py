"""The chart's alert rules and dashboard queries on a real Prometheus scraping a real consumer.

promtool's unit tests (helm/alerts) prove the rules against series written by hand; this proves
them against what the consumer really exports when Redo fails. A Prometheus (Debian's package,
installed by .ci/run) scrapes the consumer every second and loads the chart's rules file with
time sped up: every ``for:`` becomes 2 s and every range window runs 30 times faster (a minute
becomes 2 s), so "no commit for 10 minutes" means 20 seconds here. Three scripted faults, one
after the other, must each drive their alerts to ``firing`` and, once the fault is removed, out
of the active alerts again, all read through Prometheus' HTTP API:

- a Redo outage (every request answered 503): TrackingRedoCircuitOpen, TrackingRedoErrorRatioHigh
- Redo refusing the API secret (401): TrackingRedoAuthBlocked
- a partition stuck on a record Redo keeps answering 404: TrackingConsumerNoCommittedProgress

Afterwards every PromQL query of the Grafana dashboard (with its variables filled in) must return
at least one series, so no panel of the dashboard is empty for a consumer that has seen these
faults, a dead letter, a rule firing and a stale scan.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from consumer.model import ShipmentStatus
from devkit.consumer_process import ConsumerProcess, free_port, wait_fully_committed
from devkit.generator import tracking_stream
from devkit.kafka_tools import produce, produce_events, wait_until
from devkit.sandbox import SandboxControl
from tests.unit.ops.test_ops_artifacts import ALERT_RULES, dashboard_expressions

pytestmark = pytest.mark.broker

Env = Callable[..., dict[str, str]]

SECONDS_PER_MINUTE = 2
"""Rule time: one minute of the production rules lasts this many seconds here."""
PENDING = "2s"
"""Every alert's ``for:`` in the sped-up rules: long enough to see it hold, short to wait for."""
ALERT_TIMEOUT = 90.0
NAMESPACE, POD, JOB = "tracking", "tracking-consumer-0", "tracking-consumer"
RATE_INTERVAL = "15s"
"""What Grafana's ``$__rate_interval`` becomes: several 1 s scrapes, well inside the test."""


class Prometheus:
    """A Prometheus process on a free loopback port with its own config and storage, stopped
    (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, workdir: Path, target: str, rules: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(
                "the prometheus binary is not on PATH: install Debian's prometheus package "
                "(.ci/run does: apt-get install prometheus)"
            )
        self.url = f"http://127.0.0.1:{free_port()}"
        config = workdir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "static_configs": [
                                {
                                    "targets": [target],
                                    "labels": {"namespace": NAMESPACE, "pod": POD},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        self._log = (workdir / "prometheus.log").open("wb")
        self.log_path = workdir / "prometheus.log"
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a Prometheus HTTP API answer; raises on an error answer."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        payload = response.json()
        assert payload["status"] == "success", payload
        return payload["data"]

    def ready(self) -> bool:
        if self._process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self._process.returncode}: {self.tail()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def alert_states(self) -> dict[str, str]:
        """Active alerts by name: ``pending`` or ``firing`` (several series: the worst)."""
        states: dict[str, str] = {}
        for alert in self.api("alerts")["alerts"]:
            name = alert["labels"]["alertname"]
            if states.get(name) != "firing":
                states[name] = alert["state"]
        return states

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="prometheus-") as name:
        yield Path(name)


def sped_up_rules(source: Path, out: Path) -> Path:
    """The chart's rules with ``for:`` set to PENDING and every range window ``[Nm]``/``[Nh]``
    scaled to SECONDS_PER_MINUTE seconds a minute; nothing else changes."""

    def scale(match: re.Match[str]) -> str:
        minutes = int(match["n"]) * (60 if match["unit"] == "h" else 1)
        return f"[{minutes * SECONDS_PER_MINUTE}s]"

    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(?P<n>\d+)(?P<unit>[mh])\]", scale, rule["expr"])
            if "for" in rule:
                rule["for"] = PENDING
    out.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return out


def test_sped_up_rules_change_only_for_and_range_windows(workdir: Path) -> None:
    original = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    fast = yaml.safe_load(sped_up_rules(ALERT_RULES, workdir / "r.yaml").read_text())
    fast_rules = fast["groups"][0]["rules"]
    progress = next(
        r for r in fast_rules if r.get("alert") == "TrackingConsumerNoCommittedProgress"
    )
    assert "changes(tracking_committed_offset[20s])" in progress["expr"]
    assert all(r["for"] == PENDING for r in fast_rules if "alert" in r)
    assert [r.get("alert", r.get("record")) for r in fast_rules] == [
        r.get("alert", r.get("record")) for r in original
    ]
    assert not any(re.search(r"\[\d+[mh]\]", r["expr"]) for r in fast_rules)


def test_alerts_fire_and_resolve_and_every_dashboard_query_returns_series(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    sandbox: SandboxControl,
    consumer_env: Env,
    workdir: Path,
) -> None:
    topic = new_topic(partitions=3)
    env = consumer_env(topic, NOT_FOUND_RETRY_WINDOW_SECONDS="3600")
    rules = sped_up_rules(ALERT_RULES, workdir / "rules.yaml")
    with ConsumerProcess(env) as consumer:
        prometheus = Prometheus(workdir, f"127.0.0.1:{consumer.metrics_port}", rules)
        try:
            wait_until(prometheus.ready, 30, "prometheus ready")
            consumer.wait_ready()
            _produce_every_kind_of_record(kafka_bootstrap, topic)
            wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [consumer])
            _assert_rules_healthy(prometheus)
            assert prometheus.alert_states() == {}, "alerts active before any fault"

            faults = _Faults(prometheus, consumer, sandbox, kafka_bootstrap, topic)
            outage = {"fail_next": {"count": 1_000_000, "status": 503}}
            faults.fire_and_resolve(
                "outage", outage, "TrackingRedoCircuitOpen", "TrackingRedoErrorRatioHigh"
            )
            faults.fire_and_resolve("refused", {"token": "rotated"}, "TrackingRedoAuthBlocked")
            stuck = {"not_found": ["stuck-00000"]}
            faults.fire_and_resolve("stuck", stuck, "TrackingConsumerNoCommittedProgress")
            wait_fully_committed(kafka_bootstrap, env["KAFKA_GROUP_ID"], topic, [consumer])

            empty = [
                expr
                for expr in map(_filled_in, dashboard_expressions())
                if not prometheus.api("query", query=expr)["result"]
            ]
            assert not empty, "dashboard queries without a series:\n" + "\n".join(empty)
        finally:
            prometheus.stop()
        assert consumer.stop() == 0


def _produce_every_kind_of_record(bootstrap: str, topic: str) -> None:
    """Ordinary scans, a repeat, an ETA shift (a ``delayed`` rule firing), a scan older than
    MAX_SCAN_AGE (a stale drop) and an undecodable record (a dead letter): every labelled
    series the dashboard reads then exists."""
    now = datetime.now(UTC).replace(microsecond=0)
    scans = tracking_stream(5, 3, start=now - timedelta(days=1), prefix="live")
    first = scans[0]
    booked = replace(
        first,
        event_id="live-slip-0",
        fulfillment_id="live-slip",
        occurred_at=now - timedelta(hours=3),
        estimated_delivery_date=(now + timedelta(days=2)).date(),
    )
    slipped = replace(
        booked,
        event_id="live-slip-1",
        status=ShipmentStatus.IN_TRANSIT,
        occurred_at=now - timedelta(hours=1),
        estimated_delivery_date=(now + timedelta(days=5)).date(),
    )
    stale = replace(
        first,
        event_id="live-stale",
        fulfillment_id="live-stale",
        occurred_at=now - timedelta(days=10),
    )
    produce_events(bootstrap, topic, [*scans, first, booked, slipped, stale])
    produce(bootstrap, topic, [(b"live-garbage", b"\x00not avro")])


class _Faults:
    """Drives one fault at a time through the sandbox while Prometheus watches the consumer."""

    def __init__(
        self,
        prometheus: Prometheus,
        consumer: ConsumerProcess,
        sandbox: SandboxControl,
        bootstrap: str,
        topic: str,
    ) -> None:
        self._prometheus = prometheus
        self._consumer = consumer
        self._sandbox = sandbox
        self._bootstrap = bootstrap
        self._topic = topic

    def fire_and_resolve(self, prefix: str, fault: dict[str, Any], *alerts: str) -> None:
        """Inject ``fault``, send the five scans of shipment ``<prefix>-00000`` into it, wait
        until each of ``alerts`` has been seen firing; clear the fault and wait until none of
        them is active. Either wait failing shows the active alerts and the consumer's log."""
        self._sandbox.set_faults(**fault)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
        produce_events(
            self._bootstrap, self._topic, tracking_stream(1, 5, start=start, prefix=prefix)
        )
        fired: set[str] = set()

        def all_fired() -> bool:
            states = self._prometheus.alert_states()
            fired.update(alert for alert in alerts if states.get(alert) == "firing")
            return fired == set(alerts)

        self._wait(all_fired, f"{', '.join(alerts)} firing under {fault}")
        self._sandbox.clear_faults()
        self._wait(
            lambda: not set(alerts) & set(self._prometheus.alert_states()),
            f"{', '.join(alerts)} resolved",
        )

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        try:
            wait_until(
                lambda: self._consumer.alive_or_fail() and condition(),
                ALERT_TIMEOUT,
                what,
                interval=0.5,
            )
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}; active alerts {self._prometheus.alert_states()}\n"
                f"consumer log:\n{self._consumer.tail()}"
            ) from None


def _assert_rules_healthy(prometheus: Prometheus) -> None:
    """Every loaded rule evaluates without error (a rule Prometheus cannot run never fires)."""
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    wanted = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    assert len(rules) == len(wanted), [rule["name"] for rule in rules]
    wait_until(
        lambda: all(
            rule["health"] == "ok"
            for group in prometheus.api("rules")["groups"]
            for rule in group["rules"]
        ),
        15,
        "every rule evaluated with health ok",
    )


def _filled_in(expr: str) -> str:
    """A dashboard query as Grafana would send it for this consumer's series."""
    return (
        expr.replace("$namespace", NAMESPACE)
        .replace("$job", JOB)
        .replace("$pod", POD)
        .replace("$__rate_interval", RATE_INTERVAL)
    )
