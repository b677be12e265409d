"""The consumer as a real subprocess (``python -m consumer run``), as the tests, demo and
benchmark run it: started with an environment, probed over HTTP, stopped or killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from devkit.kafka_tools import wait_until


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

    def probe(self, path: str) -> int | None:
        """HTTP status of ``path`` on the metrics port, or None while it does not answer."""
        try:
            return httpx.get(self.url + path, timeout=2).status_code
        except httpx.TransportError:
            return None

    def metrics_text(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5).text

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(
            lambda: self._alive_or_fail() and self.probe("/readyz") == 200,
            timeout,
            f"consumer ready (log: {self.tail()})",
        )

    def _alive_or_fail(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"consumer exited with {self._process.returncode}: {self.tail()}")
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
