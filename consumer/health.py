"""``/metrics``, ``/healthz`` and ``/readyz`` on METRICS_PORT, served from a daemon thread.

Liveness means the Kafka loop is still turning (it beats every poll). Readiness means the member
has joined the group, every assigned partition's state is restored, and Redo accepts our secret:
a pod blocked on a 401 is alive but must not look healthy to a rollout. A member that joined and
got no partitions (more pods than partitions) is ready: it is a standby, not a failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

LIVENESS_TIMEOUT_SECONDS = 60.0


class Health:
    def __init__(
        self, auth_blocked: Callable[[], bool], held_writes: Callable[[], int] = lambda: 0
    ) -> None:
        self._auth_blocked = auth_blocked
        self._held_writes = held_writes
        self._last_beat = time.monotonic()
        self.joined = False
        self.restoring: set[Hashable] = set()  # one entry per assignment being restored

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def alive(self) -> tuple[bool, str]:
        idle = time.monotonic() - self._last_beat
        if idle > LIVENESS_TIMEOUT_SECONDS:
            return False, f"Kafka loop idle for {idle:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        alive, why = self.alive()
        if not alive:
            return False, why
        if not self.joined:
            return False, "not yet assigned by the consumer group"
        if self.restoring:
            return False, f"restoring state of {len(self.restoring)} partition(s)"
        if self._auth_blocked():
            return False, "Redo refuses the API secret (401/403)"
        held = self._held_writes()
        if held:
            return False, f"{held} Kafka write(s) held: the broker refuses them (see the log)"
        return True, "ok"


class HealthServer:
    def __init__(self, health: Health, port: int, host: str = "0.0.0.0") -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(health))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                ok, why = health.alive() if self.path == "/healthz" else health.ready()
                self._answer(200 if ok else 503, why.encode() + b"\n", "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the logs."""

    return Handler
