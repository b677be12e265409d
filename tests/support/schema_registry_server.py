"""A tiny but real Confluent-compatible Schema Registry over HTTP, for tests.

It speaks the two endpoints the consumer uses, with Confluent's status codes and error bodies:
``GET /schemas/ids/{id}`` and ``GET /schemas/guids/{guid}``. It records every request, can require
basic auth, can be told to answer everything with a fixed response (an outage), and can hold
schema lookups until the test releases them. ``hanging_registry`` is the other kind of outage: a
port that accepts connections and never answers.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RegistryState:
    """What the server knows and what it has seen; shared with the handler threads."""

    schemas: dict[int, dict[str, Any]] = field(default_factory=dict)
    guids: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    credentials: tuple[str, str] | None = None
    override: tuple[int, bytes] | None = None
    hold: threading.Event | None = None
    lock: threading.Condition = field(default_factory=threading.Condition)

    def put(
        self,
        schema_id: int,
        schema: str,
        schema_type: str | None = None,
        guid: str | None = None,
    ) -> None:
        """Serve ``schema`` (JSON text, verbatim) as ``schema_id``, and as ``guid`` if given."""
        entry: dict[str, Any] = {"schema": schema}
        if schema_type is not None:
            entry["schemaType"] = schema_type
        if guid is not None:
            entry["guid"] = guid  # what newer registries add to both answers
        with self.lock:
            self.schemas[schema_id] = entry
            if guid is not None:
                self.guids[guid] = schema_id

    def get_requests(self) -> list[tuple[str, str, str | None]]:
        """(method, path, Authorization header) of every request so far."""
        with self.lock:
            return list(self.requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least ``count`` requests have arrived; fail the test after ``timeout``."""
        with self.lock:
            arrived = self.lock.wait_for(lambda: len(self.requests) >= count, timeout)
        assert arrived, f"schema registry got {len(self.requests)} request(s), expected {count}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self._intercepted():
            return
        state = self.server.state
        schema_id = self._asked_for()
        if schema_id is None:
            self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
            return
        if state.hold is not None and not state.hold.wait(timeout=10):
            self._reply(500, {"error_code": 500, "message": "test never released the hold"})
            return
        with state.lock:
            entry = state.schemas.get(schema_id)
        if entry is None:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})
        else:
            self._reply(200, entry)

    def _asked_for(self) -> int | None:
        """The schema ID the path asks for (-1: an unknown GUID); None: not an endpoint."""
        parts = self.path.split("/")
        if len(parts) != 4 or parts[:2] != ["", "schemas"]:
            return None
        if parts[2] == "ids" and parts[3].isdigit():
            return int(parts[3])
        if parts[2] == "guids":
            with self.server.state.lock:
                return self.server.state.guids.get(parts[3], -1)
        return None

    def _intercepted(self) -> bool:
        """Record the request; answer it here if auth fails or an override is set."""
        state = self.server.state
        authorization = self.headers.get("Authorization")
        with state.lock:
            state.requests.append((self.command, self.path, authorization))
            state.lock.notify_all()
            override = state.override
            credentials = state.credentials
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            if authorization != f"Basic {token}":
                self._reply(401, {"error_code": 401, "message": "Unauthorized"})
                return True
        if override is not None:
            status, payload = override
            self._send(status, payload)
            return True
        return False

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; the requests are recorded in the state instead."""


class _Server(ThreadingHTTPServer):
    def __init__(self, state: RegistryState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def running_registry(state: RegistryState | None = None) -> Iterator[tuple[str, RegistryState]]:
    """Serve a registry on a free loopback port; yields (base URL, state); stops it after."""
    server = _Server(state or RegistryState())
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # how soon shutdown() is noticed
        name="schema-registry",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive(), "schema registry server thread did not stop"


@contextmanager
def hanging_registry() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
