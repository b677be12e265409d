"""What a scenario runs on and breaks: the broker, a Redo sandbox that can go away, and consumer
members that can be killed, stopped and started again, with a log of every fault injected."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from devkit.broker import LocalKafka
from devkit.consumer_process import ConsumerProcess
from devkit.sandbox import SandboxControl, SandboxServer
from devkit.sandbox.control import Call
from devkit.scenarios import iso

TOKEN = "reliability-token-0123456789"
NO_FAULT = "no fault between"
_IN_PROGRESS_S = 0.5
"""Long enough for a request already past the sandbox's fault checks to be answered."""


class Redo:
    """The Redo sandbox, which can go away (connection refused) and come back on its port.

    A sandbox that stops forgets its record, so the calls it received are kept here first; the
    baseline faults (a steady latency) are set again on every comeback."""

    def __init__(self, baseline: dict[str, Any]) -> None:
        self._baseline = baseline
        self._archive: list[Call] = []
        self._server: SandboxServer | None = SandboxServer(TOKEN).start()
        self.url = self._server.url
        port = urlsplit(self.url).port
        assert port is not None
        self._port = port
        self.control = SandboxControl(self.url)
        self.control.set_faults(**baseline)

    def go_away(self) -> None:
        """Drop every request first, so no call is accepted between keeping the record and
        stopping the listener."""
        assert self._server is not None, "Redo is already away"
        self.control.set_faults(drop_next=10**9)
        time.sleep(_IN_PROGRESS_S + self._baseline.get("latency_ms", 0) / 1000)
        self._archive.extend(self.control.calls())
        self._server.stop()
        self._server = None

    def come_back(self) -> None:
        assert self._server is None, "Redo is not away"
        self._server = SandboxServer(TOKEN, port=self._port).start()
        self.control.set_faults(**self._baseline)

    def calls(self) -> list[Call]:
        """Every call received (answered or dropped), over all the sandbox's lives, in order."""
        live = self.control.calls() if self._server is not None else []
        return self._archive + live

    def accepted(self) -> int:
        """Calls answered 200 so far: the progress of a run."""
        live = self.control.stats().get("200", 0) if self._server is not None else 0
        return sum(1 for call in self._archive if call["status_code"] == 200) + live

    def reset(self) -> None:
        """A new scenario: no record, no faults but the baseline."""
        self._archive.clear()
        self.control.clear_faults()
        self.control.reset()
        self.control.set_faults(**self._baseline)

    def close(self) -> None:
        self.control.close()
        if self._server is not None:
            self._server.stop()


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, to whom, when, and how far its consequences may reach (ISO
    times in the sandbox's format, so comparable with the ``received_at`` of the calls)."""

    kind: str
    target: str
    started: str
    ended: str
    reach: str


@dataclass
class FaultLog:
    """The faults of a scenario. A fault's consequences reach ``aftermath_s`` past its end: the
    group's session timeout, within which a member it cut off is declared dead and its
    partitions move (after a broker restart, say)."""

    aftermath_s: float
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def instant(self, kind: str, target: str) -> None:
        self._add(kind, target, datetime.now(UTC))

    @contextmanager
    def lasting(self, kind: str, target: str) -> Iterator[None]:
        started = datetime.now(UTC)
        try:
            yield
        finally:
            self._add(kind, target, started)

    def _add(self, kind: str, target: str, started: datetime) -> None:
        ended = datetime.now(UTC)
        reach = ended + timedelta(seconds=self.aftermath_s)
        with self._lock:
            self.faults.append(Fault(kind, target, iso(started), iso(ended), iso(reach)))

    def cause(self, first: str, copy: str) -> str:
        """The fault most likely to explain a call received at ``first`` and again at ``copy``:
        the latest-starting one whose reach overlaps the time between the two."""
        between = [f for f in self.faults if f.started <= copy and f.reach >= first]
        return max(between, key=lambda f: f.started).kind if between else NO_FAULT


class Member:
    """One consumer slot of the group: its incarnations share a name, a metrics port and a log,
    and its peak RSS is the largest over all of them."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.process = ConsumerProcess(env)
        self.running = False
        self.incarnations = 0
        self.crashes = 0
        self._peak_rss = 0

    def start(self) -> None:
        self.process.start()
        self.running = True
        self.incarnations += 1

    def kill(self) -> None:
        self.sample_rss()
        self.process.kill()
        self.running = False

    def stop(self) -> int:
        self.sample_rss()
        self.running = False
        return self.process.stop()

    def sample_rss(self) -> None:
        if self.running:
            with suppress(OSError, RuntimeError):  # exiting: its last sample stands
                self._peak_rss = max(self._peak_rss, self.process.peak_rss_bytes())

    @property
    def peak_rss_mib(self) -> float:
        return self._peak_rss / 2**20

    def exited_on_its_own(self) -> bool:
        """True (and counted) when a member meant to run has exited; it is then not running."""
        if not self.running:
            return False
        try:
            self.process.alive_or_fail()
        except RuntimeError:
            self.running = False
            self.crashes += 1
            return True
        return False


class Interrupted(RuntimeError):
    """The scenario is being torn down: an injector stops where it is."""


@dataclass
class Cluster:
    """The broker, Redo and the group's members for one scenario; ``lock`` serialises the
    fault injectors that start and stop members."""

    kafka: LocalKafka
    bootstrap: str
    redo: Redo
    members: list[Member]
    log: FaultLog
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def running(self) -> list[Member]:
        return [m for m in self.members if m.running]

    def pause(self, seconds: float) -> None:
        """An injector's sleep, cut short (raising ``Interrupted``) when the run is torn down."""
        if self.stopping.wait(seconds):
            raise Interrupted("the scenario is being torn down")
