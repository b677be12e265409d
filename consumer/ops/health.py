"""``/metrics``, ``/healthz`` and ``/readyz`` on METRICS_PORT, served from a daemon thread.

The server starts before anything touches Kafka, so a pod waiting for an unreachable broker is
seen (alive, not ready, its metrics scraped) rather than silent.

Liveness means both loops still turn: the asyncio loop (``keep_beating`` beats every second) and,
once started, the Kafka thread's loop (it beats every poll). Waiting for the broker at start-up is
not a liveness failure: a restart cannot fix the network. Readiness means the member has joined
the group, every assigned partition's state is restored, and Redo accepts the default secret: a
pod blocked on a 401 is alive but must not look healthy to a rollout. A store's own secret being
refused does not fail readiness (every pod has the same file, and the other stores' calls go on);
``tracking_redo_auth_blocked{secret="store:..."}`` and its alert report it. A member that joined
and got no partitions (more pods than partitions) is ready: it is a standby, not a failure.

This thread only reads: everything it answers from is in ``consumer.signals.Signals``.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consumer.signals import Signals

LIVENESS_TIMEOUT_SECONDS = 60.0
LOOP_BEAT_SECONDS = 1.0


class Health:
    """Liveness and readiness, computed from ``Signals`` (which the other threads write)."""

    def __init__(self, signals: Signals) -> None:
        self.signals = signals

    def alive(self) -> tuple[bool, str]:
        signals = self.signals
        failures = signals.unexpected_failures
        if failures:
            return False, f"{failures} unexpected failure(s) left records undone (see the log)"
        now = signals.clock()
        loop_idle = now - signals.loop_beat
        if loop_idle > LIVENESS_TIMEOUT_SECONDS:
            return False, f"asyncio loop stalled for {loop_idle:.0f}s"
        kafka_beat = signals.kafka_beat
        if kafka_beat is not None and now - kafka_beat > LIVENESS_TIMEOUT_SECONDS:
            return False, f"Kafka loop idle for {now - kafka_beat:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        alive, why = self.alive()
        if not alive:
            return False, why
        signals = self.signals
        if not signals.joined:
            return False, signals.start_up_problem or "not yet assigned by the consumer group"
        restoring = signals.restoring
        if restoring:
            return False, f"restoring state of {restoring} partition(s)"
        if signals.auth_blocked:
            return False, "Redo refuses the default API secret (401/403)"
        held = signals.held_writes
        if held:
            return False, f"{held} Kafka write(s) held: the broker refuses them (see the log)"
        return True, "ok"


async def keep_beating(signals: Signals) -> None:
    """Beat for the asyncio loop until cancelled: a loop that stops turning stops beating."""
    while True:
        signals.beat_loop()
        await asyncio.sleep(LOOP_BEAT_SECONDS)


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
