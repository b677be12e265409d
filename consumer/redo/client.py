"""One HTTP request to Redo per call, its outcome classified into what the dispatcher does next.

There is no retry loop here: the dispatcher owns retries, backoff and the circuit breaker. The
client only says, by the exception type it raises, whether a failure is worth retrying.

The requests go over one aiohttp ``ClientSession``, not httpx: measured on the 2-core target
machine (bench/README.md), httpx 0.28 spends 1.9 ms of CPU per request at one connection and
5.4 ms at 64 (httpcore re-checks every pooled connection on every request), aiohttp 0.34 ms;
the CPU per call is what bounds this consumer's throughput.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from consumer import __version__
from consumer.errors import (
    ConfigError,
    RedoAuthError,
    RedoError,
    RedoNotFoundError,
    RedoRejectedError,
    RedoRetryableError,
)
from consumer.model import RedoCall
from consumer.ops.metrics import REDO_IN_FLIGHT, REDO_REQUEST_DURATION, REDO_REQUESTS
from consumer.redo.payload import request_body, request_path
from consumer.redo.secrets import SecretProvider

MAX_ERROR_BODY_BYTES = 4096
_MESSAGE_BODY_CHARS = 200
_REDACTED = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class RedoResponse:
    """A 2xx answer. ``body`` is the JSON object Redo returned (empty if it sent none)."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Answer:
    """Any HTTP answer: its status, ``Retry-After`` and (for errors, truncated) body."""

    status_code: int
    retry_after: str | None
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class _TransportFailure:
    """No HTTP answer at all; ``response_class`` is the metric label (timeout or connection)."""

    response_class: str
    detail: str


class RedoClient:
    """Sends ``RedoCall``s over one pooled HTTP/1.1 keep-alive session.

    ``base_url`` may carry a path prefix (the default is ``https://api.getredo.com/v2.2``); the
    request path is appended to it, never resolved against it, so the prefix is kept.
    ``timeout`` applies to each phase (connecting, including the wait for a pooled connection,
    and each read). Create it on the event loop that will use it.
    """

    def __init__(
        self,
        base_url: str,
        secrets: SecretProvider,
        *,
        timeout: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self._base_url = _checked_base_url(base_url)
        self._secrets = secrets
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
            ),
            headers={
                "Accept": "application/json",
                "User-Agent": f"tracking-consumer/{__version__}",
            },
            json_serialize=_compact_json,
            trust_env=False,
        )

    async def send(self, call: RedoCall) -> RedoResponse:
        """POST the call once. Returns on 2xx; otherwise raises a ``RedoError`` subclass:

        429, 5xx, timeout, connection error → ``RedoRetryableError`` (with ``retry_after``);
        404 → ``RedoNotFoundError``; 401/403 → ``RedoAuthError``; any other status →
        ``RedoRejectedError``.
        """
        kind = call.kind.value
        secret = self._secrets.secret_for(call.store_id)
        REDO_IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            outcome = await self._post(
                URL(self._base_url + request_path(call), encoded=True),
                {"Authorization": f"Bearer {secret}"},
                request_body(call),
            )
        finally:
            REDO_IN_FLIGHT.dec()
            REDO_REQUEST_DURATION.labels(kind).observe(time.perf_counter() - started)
        # Raised here, outside any ``except``: the aiohttp exception (whose request info carries
        # the Authorization header) must not ride along as __context__ of ours.
        if isinstance(outcome, _TransportFailure):
            REDO_REQUESTS.labels(kind, outcome.response_class).inc()
            detail = outcome.detail.replace(secret, _REDACTED)
            raise RedoRetryableError(
                f"Redo {kind} call for fulfillment {call.fulfillment_id!r}: "
                f"{outcome.response_class}: {detail}"
            )
        REDO_REQUESTS.labels(kind, f"{outcome.status_code // 100}xx").inc()
        if outcome.is_success:
            return RedoResponse(outcome.status_code, _json_object(outcome.content))
        raise _error_for(outcome, call, secret)

    async def aclose(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> RedoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _post(
        self, url: URL, headers: dict[str, str], body: dict[str, Any]
    ) -> _Answer | _TransportFailure:
        try:
            async with self._http.post(url, headers=headers, json=body) as response:
                if 200 <= response.status < 300:
                    content = await response.read()
                else:  # an error page can be large; only its head is kept
                    content = await _head(response.content, MAX_ERROR_BODY_BYTES)
                return _Answer(response.status, response.headers.get("Retry-After"), content)
        except TimeoutError as exc:
            return _TransportFailure("timeout", _describe(exc))
        except aiohttp.ClientError as exc:
            return _TransportFailure("connection", _describe(exc))


async def _head(stream: aiohttp.StreamReader, limit: int) -> bytes:
    content = b""
    while len(content) < limit:
        chunk = await stream.read(limit - len(content))
        if not chunk:
            break
        content += chunk
    return content


def _checked_base_url(base_url: str) -> str:
    try:
        url: URL | None = URL(base_url)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("REDO_API_URL", f"must be an http(s) URL, got {base_url!r}")
    return str(url).rstrip("/")  # percent-encoded once here, so each request's URL is final


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date.

    A date in the past gives 0; an unparseable value gives ``None`` (the caller's own backoff).
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" in an HTTP-date means UTC
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _error_for(response: _Answer, call: RedoCall, secret: str) -> RedoError:
    code = response.status_code
    body = response.content.decode("utf-8", "replace")
    # A proxy's error page may echo request headers back; the secret must not reach a log.
    body = body.replace(secret, _REDACTED)
    message = (
        f"Redo answered {code} to a {call.kind.value} call for fulfillment "
        f"{call.fulfillment_id!r}: {body[:_MESSAGE_BODY_CHARS]}"
    )
    if code == 429 or code >= 500:
        retry_after = parse_retry_after(response.retry_after)
        return RedoRetryableError(message, status_code=code, body=body, retry_after=retry_after)
    if code == 404:
        return RedoNotFoundError(message, status_code=code, body=body)
    if code in (401, 403):
        return RedoAuthError(message, status_code=code, body=body)
    return RedoRejectedError(message, status_code=code, body=body)


def _json_object(content: bytes) -> dict[str, Any]:
    """The 2xx body as a JSON object; ``{}`` if it is not one, since the call did succeed."""
    try:
        data = json.loads(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _compact_json(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def _describe(exc: Exception) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
