"""One scenario end to end: a backlog with its oracle, produced to a fresh topic; the group's
members consume it while the scenario's injectors break things; then the wait for every
partition committed to its end, and the verdict on what Redo received."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from devkit.broker import LocalKafka, create_topic, delete_topics
from devkit.consumer_process import wait_fully_committed
from devkit.kafka_tools import fully_committed, wait_until
from devkit.scenarios import backlog, produce_in_order
from reliability.cluster import TOKEN, Cluster, FaultLog, Interrupted, Member, Redo
from reliability.faults import FULL, SCENARIOS, Scale
from reliability.oracle import Verdict, judge

STORIES_END_AGO = timedelta(days=10)
"""The stories end this long before the run, so every rule deadline has passed (MAX_SCAN_AGE=0
lets such old scans through)."""
_SAMPLE_INTERVAL_S = 1.0
_RULE_CALLS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunSettings:
    shipments: int = 5000
    extra_in_transit: int = 4
    """More in-transit scans per story: 5,000 shipments then make about 50,000 events."""
    partitions: int = 6
    members: int = 3
    latency_ms: float = 20.0
    """Redo's steady answer time."""
    pace_s: float = 150.0
    """Each member's REDO_RATE_LIMIT is set so that all of them would deliver the stream in
    about this long: the stream then lasts while the faults happen."""
    redo_timeout_s: float = 2.0
    settle_timeout_s: float = 900.0
    seed: int = 1
    scale: Scale = FULL


@dataclass
class Row:
    scenario: str
    title: str
    events: int
    verdict: Verdict
    faults: Counter[str]
    peak_rss_mib: dict[str, float]
    settle_s: float | None
    """From the end of the last fault to every partition committed at its end."""
    mid_stream: bool
    """The stream was not yet all committed when the last fault ended."""
    crashes: int
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.error is None and self.verdict.passed


def consumer_env(
    bootstrap: str, topic: str, redo_url: str, settings: RunSettings, calls: int
) -> dict[str, str]:
    """Production defaults except where a test run needs otherwise: old scans let through, a
    10 s session (a killed member's partitions move on sooner than librdkafka's 45 s), shorter
    retry caps, a Redo timeout the slow answers can exceed, and the pace of ``calls``."""
    rate = calls / (settings.members * settings.pace_s)
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"group-{topic}",
        "KAFKA_SESSION_TIMEOUT_MS": "10000",
        "REDO_API_URL": redo_url,
        "REDO_API_SECRET": TOKEN,
        "REDO_TIMEOUT_SECONDS": str(settings.redo_timeout_s),
        "REDO_RATE_LIMIT": f"{rate:.1f}",
        "MAX_SCAN_AGE": "0",
        "FORWARD_SCANS": "all",
        "RETRY_MAX_SECONDS": "5",
        "AUTH_RETRY_SECONDS": "5",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def environment(latency_ms: float) -> Iterator[tuple[LocalKafka, Redo]]:
    """The broker and Redo every scenario of a run shares; both stopped at the end."""
    with ExitStack() as stack:
        kafka = stack.enter_context(LocalKafka())
        redo = Redo({"latency_ms": latency_ms})
        stack.callback(redo.close)
        yield kafka, redo


def run_scenario(name: str, kafka: LocalKafka, redo: Redo, settings: RunSettings) -> Row:
    title, injectors = SCENARIOS[name]
    rng = random.Random(f"{settings.seed}-{name}")
    bootstrap = kafka.bootstrap_servers
    now = datetime.now(UTC)
    scenario = backlog(
        settings.shipments,
        end=now - STORIES_END_AGO,
        seed=settings.seed,
        prefix=f"{name}",
        extra_in_transit=settings.extra_in_transit,
    )
    records = scenario.records()
    topic = f"reliability-{name}-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, settings.partitions)
    produce_in_order(bootstrap, topic, records)
    redo.reset()
    expected = sum(scenario.expected_statuses().values())
    env = consumer_env(bootstrap, topic, redo.url, settings, expected)
    group = env["KAFKA_GROUP_ID"]
    members = [Member(f"m{i + 1}", env) for i in range(settings.members)]
    aftermath_s = int(env["KAFKA_SESSION_TIMEOUT_MS"]) / 1000
    cluster = Cluster(kafka, bootstrap, redo, members, FaultLog(aftermath_s))
    settle_s: float | None = None
    mid_stream = False
    error: str | None = None
    with ExitStack() as stack:
        for member in members:
            stack.push(member.process)  # on the way out: killed if still running, log removed
            member.start()
        try:
            _watch(cluster, lambda: redo.accepted() >= expected // 20, 180, "5% of the calls")
            with ThreadPoolExecutor(len(injectors)) as pool:
                futures = [
                    pool.submit(inject, cluster, settings.scale, rng, settings.redo_timeout_s)
                    for inject in injectors
                ]
                try:
                    while wait(futures, _SAMPLE_INTERVAL_S, FIRST_EXCEPTION).not_done:
                        _heal(cluster)
                finally:
                    cluster.stopping.set()  # the others stop too if one failed (or Ctrl-C)
                failures = [e for e in (f.exception() for f in futures) if e is not None]
                causes = [e for e in failures if not isinstance(e, Interrupted)] or failures
                if causes:
                    raise causes[0]
            last_fault = time.monotonic()
            mid_stream = not fully_committed(bootstrap, group, topic)
            _settle(cluster, group, topic, settings.settle_timeout_s)
            settle_s = time.monotonic() - last_fault
            _watch(
                cluster,
                lambda: judge(scenario, redo.calls(), cluster.log, now).missing_events == 0,
                _RULE_CALLS_TIMEOUT_S,
                "the rule events due once caught up",
                interval=2.0,
            )
        except (TimeoutError, RuntimeError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            for member in cluster.running():
                code = member.stop()
                if code != 0 and error is None:
                    error = f"{member.name} exited {code} on SIGTERM: {member.process.tail()}"
    delete_topics(bootstrap, [topic, f"{group}.{topic}.state", f"{topic}.dlq"])
    return Row(
        scenario=name,
        title=title,
        events=len(records),
        verdict=judge(scenario, redo.calls(), cluster.log, now),
        faults=Counter(f.kind for f in cluster.log.faults),
        peak_rss_mib={m.name: m.peak_rss_mib for m in members},
        settle_s=settle_s,
        mid_stream=mid_stream,
        crashes=sum(m.crashes for m in members),
        error=error,
    )


def _heal(cluster: Cluster) -> bool:
    """Sample RSS; restart a member that exited on its own (as Kubernetes would), counting it."""
    with cluster.lock:
        for member in cluster.members:
            member.sample_rss()
            if member.exited_on_its_own():
                cluster.log.instant("member crashed (restarted)", member.name)
                member.start()
    return True


def _watch(
    cluster: Cluster,
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.5,
) -> None:
    wait_until(lambda: _heal(cluster) and condition(), timeout, what, interval=interval)


def _settle(cluster: Cluster, group: str, topic: str, timeout: float) -> None:
    """Every partition committed at its end, restarting members that crash meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        _heal(cluster)
        processes = [m.process for m in cluster.running()]
        try:
            wait_fully_committed(
                cluster.bootstrap,
                group,
                topic,
                processes,
                timeout=max(deadline - time.monotonic(), 1.0),
            )
            return
        except RuntimeError:  # a member exited: heal and go on waiting
            if time.monotonic() >= deadline:
                raise
