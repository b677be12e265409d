"""The consumer as a real subprocess (``python -m consumer run``), as the tests, demo and
benchmark run it: started with an environment, probed over HTTP, stopped or killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devkit.kafka_tools import committed_offsets, end_offsets, fully_committed, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ConsumerProcess:
    def __init__(self, env: Mapping[str, str], *, args: tuple[str, ...] = ()) -> None:
        self.metrics_port = free_port()
        self._env = {**os.environ, **env, "METRICS_PORT": str(self.metrics_port)}
        self._args = args
        handle, name = tempfile.mkstemp(prefix="consumer-", suffix=".log")
        self._log = os.fdopen(handle, "wb")
        self.log_path = Path(name)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ConsumerProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "consumer", "run", *self._args],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def peak_rss_bytes(self) -> int:
        """The process's peak resident set size so far (``VmHWM`` of /proc/<pid>/status)."""
        return self._status_bytes("VmHWM")

    def rss_bytes(self) -> int:
        """The process's resident set size now (``VmRSS``): a soak's memory curve."""
        return self._status_bytes("VmRSS")

    def _status_bytes(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
        raise RuntimeError(f"no {field} in /proc/{self.pid}/status")

    def probe(self, path: str) -> int | None:
        """HTTP status of ``path`` on the metrics port, or None while it does not answer."""
        try:
            return httpx.get(self.url + path, timeout=2).status_code
        except httpx.TransportError:
            return None

    def metrics_text(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the scraped samples called ``name`` whose labels include ``labels``; None
        when there is no such sample (a labelled metric never touched) or /metrics does not
        answer yet."""
        try:
            text = self.metrics_text()
        except httpx.TransportError:
            return None
        values = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]
        return sum(values) if values else None

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(
            lambda: self.alive_or_fail() and self.probe("/readyz") == 200,
            timeout,
            f"consumer ready (log: {self.tail()})",
        )

    def wait_assigned(self, timeout: float = 60) -> None:
        """Wait until the group gave this member partitions (its rebalance is over)."""
        wait_until(
            lambda: self.alive_or_fail() and (self.metric("tracking_assigned_partitions") or 0) > 0,
            timeout,
            f"partitions assigned to consumer {self.pid}; its log:\n{self.tail()}",
        )

    def alive_or_fail(self) -> bool:
        """True while the process runs; raises with its log tail once it has exited."""
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"consumer exited with {self._process.returncode}: {self.tail(80)}")
        return True

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the graceful shutdown; returns the exit code."""
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                raise
        return self._process.returncode

    def kill(self) -> None:
        """kill -9: no shutdown, no commit."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ConsumerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


def wait_fully_committed(
    bootstrap: str,
    group: str,
    topic: str,
    processes: Sequence[ConsumerProcess],
    timeout: float = 120,
) -> None:
    """Wait until ``group`` committed every partition of ``topic`` to its end. Fails at once if
    one of ``processes`` exits; on timeout, says where the offsets stand and shows their logs."""
    try:
        wait_until(
            lambda: (
                all(p.alive_or_fail() for p in processes)
                and fully_committed(bootstrap, group, topic)
            ),
            timeout,
            "",
            interval=0.25,
        )
    except TimeoutError:
        logs = "\n".join(f"--- consumer {p.pid}:\n{p.tail()}" for p in processes)
        raise TimeoutError(
            f"timed out after {timeout:.0f}s waiting for {group} to commit {topic} to the end: "
            f"committed {committed_offsets(bootstrap, group, topic)}, "
            f"end {end_offsets(bootstrap, topic)}\n{logs}"
        ) from None
