"""The processes a run starts: the Redo sandbox and the contenders, each on its own interpreter.

Every contender is a separate process, so it gets its own core, its peak RSS is its own
(``VmHWM``), and a crash shows its log tail instead of taking the harness down. Stopping is
SIGTERM (graceful), then SIGKILL after a bound; nothing is ever left running.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench import procstat
from devkit.sandbox import SandboxControl

STOP_TIMEOUT_S = 30.0
_SANDBOX_START_TIMEOUT_S = 20.0


class ProcessFailed(RuntimeError):
    """A process exited early or did not answer in time; the message carries its log tail."""


class Process:
    """One child process with its output in a temp log file (or piped, for ``piped=True``)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        piped: bool = False,
    ) -> None:
        self.name = name
        handle, log_name = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")
        self._log = os.fdopen(handle, "wb")
        self.log_path = Path(log_name)
        self._popen = subprocess.Popen(
            list(command),
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            stdout=subprocess.PIPE if piped else self._log,
            stderr=self._log,
            text=piped,
            # Ctrl-C reaches only the harness, which then stops everything in order.
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def stdin(self) -> IO[str]:
        assert self._popen.stdin is not None, "not started with piped=True"
        return self._popen.stdin

    def check_alive(self) -> None:
        if self._popen.poll() is not None:
            raise ProcessFailed(
                f"{self.name} exited with code {self._popen.returncode}:\n{self.tail()}"
            )

    def read_line(self, prefix: str, timeout: float) -> str:
        """The rest of the next stdout line starting with ``prefix`` (piped processes only)."""
        assert self._popen.stdout is not None, "not started with piped=True"
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._popen.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessFailed(f"{self.name}: no {prefix!r} line in {timeout:.0f}s")
                if selector.select(remaining):
                    line: str = self._popen.stdout.readline()
                    if not line:
                        self._popen.wait()
                        self.check_alive()
                    if line.startswith(prefix):
                        return line[len(prefix) :].strip()

    def peak_rss_mb(self) -> float:
        return procstat.peak_rss_mb(self.pid)

    def stop(self) -> None:
        """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL; closes the pipes and the log."""
        if self._popen.poll() is None:
            if self._popen.stdin is not None:
                self._popen.stdin.close()
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        for pipe in (self._popen.stdin, self._popen.stdout):
            if pipe is not None:
                pipe.close()
        self._log.close()

    def tail(self, lines: int = 25) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def remove_log(self) -> None:
        self.log_path.unlink(missing_ok=True)


class Sandbox:
    """Redo as its own process, so it does not share the harness's or a contender's interpreter,
    and its control API: ``bench.redo_standin`` (no validation), or with ``validating`` the full
    ``devkit.sandbox`` (~0.5 ms of CPU per request: at 0 ms it, not the contender, is measured)."""

    def __init__(self, token: str, *, validating: bool = False) -> None:
        module = ["devkit.sandbox", "--port", "0"] if validating else ["bench.redo_standin"]
        self._process = Process(
            "sandbox", [sys.executable, "-m", *module, "--token", token], piped=True
        )
        try:
            self.url = self._process.read_line("SANDBOX_URL=", _SANDBOX_START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        self.control = SandboxControl(self.url, timeout=60)

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        if hasattr(self, "control"):
            self.control.close()
        self._process.stop()
        self._process.remove_log()
