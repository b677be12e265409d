"""The long-run memory soak (issue 10, item 2): shipments pushed through state on partitions that
never go quiet, with short expiry, while the shipments in state, the changelog and the RSS are
sampled. Per-shipment expiry keeps all three level; expiry that waits for a whole partition to
be settled lets them grow for as long as the stream keeps coming.

Each shipment is scanned ``pre_transit`` when it starts; every other one is ``delivered``
``follow_up_s`` later (then expires ``expire_after_terminal`` after that), the rest go silent
(and expire ``expire_after_last_scan`` after their scan). Scans carry the wall clock as their
event time, so the partition clock is the stream's own. The consumer runs ``--dry-run``: the
soak is about state, and a sandbox recording a million calls would itself be the memory hog.
"""

from __future__ import annotations

import csv
import heapq
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

from consumer.model import TrackingEvent
from devkit.broker import LocalKafka, create_topic
from devkit.consumer_process import ConsumerProcess
from devkit.encoding import encode_raw
from devkit.generator import shipment_scans
from devkit.kafka_tools import end_offsets

RULES = """\
defaults:
  expire_after_terminal: {terminal}
  expire_after_last_scan: {last_scan}
"""
LEVEL_GROWTH = 1.25
"""Levelled off: the second half of the stream peaks at most this much above the first half."""
KEPT_UP = 0.99
_COLUMNS = ("seconds", "shipments_produced", "records_consumed", "in_state", "changelog", "rss_mib")


@dataclass(frozen=True)
class SoakSettings:
    shipments: int = 1_000_000
    rate: float = 2000.0
    """Shipments started per second."""
    partitions: int = 6
    follow_up_s: float = 5.0
    expire_after_terminal: str = "10s"
    expire_after_last_scan: str = "1m"
    tail_s: float = 90.0
    """Sampling goes on this long after the last scan: the stream has stopped, state may drain."""
    sample_s: float = 5.0
    out_dir: Path = Path("reliability/results")


@dataclass(frozen=True)
class Sample:
    seconds: float
    shipments_produced: int
    records_consumed: int
    in_state: int
    changelog: int
    rss_mib: float


def run_soak(settings: SoakSettings) -> tuple[str, bool]:
    """Run the soak; returns the report (Markdown) and whether it could run to the end."""
    with ExitStack() as stack:
        kafka = stack.enter_context(LocalKafka())
        bootstrap = kafka.bootstrap_servers
        topic = f"soak-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic, settings.partitions)
        rules = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "rules.yaml"
        rules.write_text(
            RULES.format(
                terminal=settings.expire_after_terminal, last_scan=settings.expire_after_last_scan
            )
        )
        group = f"group-{topic}"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": group,
            "REDO_API_SECRET": "dry-run",
            "RULES_FILE": str(rules),
            "LOG_LEVEL": "WARNING",
        }
        proc = stack.enter_context(ConsumerProcess(env, args=("--dry-run",)))
        proc.wait_ready()
        producer = _LiveStream(bootstrap, topic, settings)
        stack.callback(producer.join)
        producer.start()
        changelog = f"{group}.{topic}.state"
        samples = []
        for sample in _sample(proc, producer, bootstrap, changelog, settings):
            print(sample, flush=True)  # a long run shows where it stands
            samples.append(sample)
        proc.stop()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = settings.out_dir / "soak.csv"
    with csv_path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(_COLUMNS)
        writer.writerows(
            (
                f"{s.seconds:.0f}",
                s.shipments_produced,
                s.records_consumed,
                s.in_state,
                s.changelog,
                f"{s.rss_mib:.1f}",
            )
            for s in samples
        )
    png_path = settings.out_dir / "soak.png"
    _plot(samples, producer.seconds, png_path)
    return _summary(samples, producer, settings, csv_path, png_path), producer.error is None


class _LiveStream(threading.Thread):
    """Starts ``rate`` shipments a second, each scan stamped with the moment it is produced."""

    def __init__(self, bootstrap: str, topic: str, settings: SoakSettings) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True}
        )
        self._topic = topic
        self._settings = settings
        self.started = 0
        self.records = 0
        self.seconds = 0.0
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return not self.is_alive()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported in the summary; the sampling stops with the stream
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        rng = random.Random(7)
        follow_ups: list[tuple[float, int, TrackingEvent]] = []
        start = time.monotonic()
        rate = self._settings.rate
        for number in range(self._settings.shipments):
            due = start + number / rate
            while follow_ups and follow_ups[0][0] <= due:
                self._send(heapq.heappop(follow_ups)[2])
            time.sleep(max(0.0, due - time.monotonic()))
            delivered = number % 2 == 0
            scans = shipment_scans(
                f"soak-{number:07d}", datetime.now(UTC), 3 if delivered else 1, rng
            )
            self._send(scans[0])
            if delivered:
                heapq.heappush(follow_ups, (due + self._settings.follow_up_s, number, scans[-1]))
            self.started = number + 1
        for due, _, scan in sorted(follow_ups):
            time.sleep(max(0.0, due - time.monotonic()))
            self._send(scan)
        if self._producer.flush(60):
            raise RuntimeError("scans not acknowledged within 60 s")
        self.seconds = time.monotonic() - start

    def _send(self, scan: TrackingEvent) -> None:
        now = replace(scan, occurred_at=datetime.now(UTC))
        while True:
            try:
                self._producer.produce(
                    self._topic, encode_raw(now), key=scan.fulfillment_id.encode()
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)
        self.records += 1


def _sample(
    proc: ConsumerProcess,
    stream: _LiveStream,
    bootstrap: str,
    changelog: str,
    settings: SoakSettings,
) -> Iterator[Sample]:
    start = time.monotonic()
    stopped_at: float | None = None
    while stopped_at is None or time.monotonic() - stopped_at < settings.tail_s:
        time.sleep(settings.sample_s)
        proc.alive_or_fail()
        if stopped_at is None and stream.done:
            stopped_at = time.monotonic()
        yield Sample(
            seconds=time.monotonic() - start,
            shipments_produced=stream.started,
            records_consumed=int(proc.metric("tracking_records_consumed_total") or 0),
            in_state=int(proc.metric("tracking_shipments_in_state") or 0),
            changelog=sum(end_offsets(bootstrap, changelog).values()),
            rss_mib=proc.rss_bytes() / 2**20,
        )


def _plot(samples: list[Sample], stream_seconds: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    from matplotlib import pyplot

    seconds = [s.seconds for s in samples]
    figure, (state_axes, rss_axes) = pyplot.subplots(2, 1, figsize=(9, 6), sharex=True)
    state_axes.plot(seconds, [s.in_state for s in samples], label="shipments in state")
    state_axes.plot(seconds, [s.changelog for s in samples], label="changelog records (end)")
    state_axes.plot(seconds, [s.shipments_produced for s in samples], ":", label="started")
    state_axes.set_ylabel("shipments / records")
    state_axes.legend(loc="upper left")
    rss_axes.plot(seconds, [s.rss_mib for s in samples], color="tab:red")
    rss_axes.set_ylabel("consumer RSS (MiB)")
    rss_axes.set_xlabel("seconds")
    for axes in (state_axes, rss_axes):
        axes.axvline(stream_seconds, color="grey", linestyle="--")
        axes.grid(alpha=0.3)
    state_axes.set_title("soak: the stream stops at the dashed line")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def levels_off(values: list[float]) -> tuple[bool, float]:
    """Whether the second half of ``values`` peaks within ``LEVEL_GROWTH`` of the first half's
    peak, and the ratio of the two peaks."""
    half = len(values) // 2
    first, second = max(values[:half], default=0.0), max(values[half:], default=0.0)
    ratio = second / first if first else float("inf")
    return ratio <= LEVEL_GROWTH, ratio


def _summary(
    samples: list[Sample],
    stream: _LiveStream,
    settings: SoakSettings,
    csv_path: Path,
    png_path: Path,
) -> str:
    during = [s for s in samples if s.shipments_produced < stream.started] or samples
    last = samples[-1]
    lines = [
        f"soak: {stream.started:,} of {settings.shipments:,} shipments started "
        f"({stream.records:,} scans) in {stream.seconds:.0f} s "
        f"({stream.started / max(stream.seconds, 1e-9):,.0f} shipments/s, "
        f"asked {settings.rate:,.0f}); "
        f"consumed {last.records_consumed:,} records; expiry {settings.expire_after_terminal} "
        f"after delivered, {settings.expire_after_last_scan} after the last scan",
        f"while the stream ran: peak in state {max(s.in_state for s in during):,}, "
        f"peak changelog {max(s.changelog for s in during):,}, "
        f"peak RSS {max(s.rss_mib for s in during):.0f} MiB",
        f"{settings.tail_s:.0f} s after it stopped: in state {last.in_state:,}, "
        f"changelog {last.changelog:,}, RSS {last.rss_mib:.0f} MiB",
    ]
    kept_up = last.records_consumed >= KEPT_UP * stream.records
    lines.append(
        f"the consumer kept up (consumed ≥ {KEPT_UP:.0%} of the scans by the end): "
        + ("met" if kept_up else "**not met**: the curves below say nothing about expiry")
    )
    for name, values in (
        ("shipments in state", [float(s.in_state) for s in during]),
        ("RSS", [s.rss_mib for s in during]),
    ):
        flat, ratio = levels_off(values)
        verdict = "met" if flat else "**not met**"
        lines.append(
            f"{name} levels off (2nd-half peak ≤ {LEVEL_GROWTH}x the 1st half's): "
            f"{verdict} ({ratio:.2f}x)"
        )
    if stream.error:
        lines.append(f"the stream failed: {stream.error}")
    lines.append(f"samples: {csv_path}, plot: {png_path}")
    return "\n".join(lines)
