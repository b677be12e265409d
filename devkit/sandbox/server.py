"""Running the sandbox: ``serve`` on the current loop, or ``SandboxServer`` on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from devkit.sandbox.app import build_app, normalize_prefix

# Requests still running at shutdown (e.g. held by injected latency) are cancelled after this.
_SHUTDOWN_TIMEOUT_S = 0.5
_START_TIMEOUT_S = 10.0
_BACKLOG = 1024


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    on_listening: Callable[[int], None],
    stop: asyncio.Event,
) -> None:
    """Serve ``app`` until ``stop`` is set; ``on_listening(port)`` runs once the socket listens.

    Access logging is off and a request whose client disconnects is cancelled: the benchmark
    pushes thousands of requests a second through one process.
    """
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=_BACKLOG)
        await site.start()
        on_listening(runner.addresses[0][1])
        await stop.wait()
    finally:
        await runner.cleanup()


def base_url(host: str, port: int, prefix: str) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    return f"http://{shown_host}:{port}{normalize_prefix(prefix)}"


class SandboxServer:
    """The sandbox on a background thread with its own event loop, for tests and tools.

    ``start()`` returns once the socket listens (or raises what prevented it); ``url`` is the base
    URL to use as ``REDO_API_URL`` and for ``SandboxControl``.
    """

    def __init__(
        self, token: str, host: str = "127.0.0.1", port: int = 0, *, prefix: str = ""
    ) -> None:
        self._app = build_app(token, prefix=prefix)
        self._host = host
        self._requested_port = port
        self._prefix = prefix
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return base_url(self._host, self._port, self._prefix)

    def start(self) -> SandboxServer:
        if self._thread is not None:
            raise RuntimeError("the sandbox was already started")
        self._thread = threading.Thread(target=self._run, name="redo-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            self.stop()
            raise TimeoutError(f"the sandbox did not listen within {_START_TIMEOUT_S}s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice or after a failed start."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so there is nothing left to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join()
        self._port = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which re-raises it in the caller
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve(
            self._app,
            self._host,
            self._requested_port,
            on_listening=self._listening,
            stop=self._stop,
        )

    def _listening(self, port: int) -> None:
        self._port = port
        self._ready.set()
