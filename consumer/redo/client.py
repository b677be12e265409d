"""One HTTP request to Redo per call, its outcome classified into what the dispatcher does next.

There is no retry loop here: the dispatcher owns retries, backoff and the circuit breaker. The
client only says, by the exception type it raises, whether a failure is worth retrying.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx

from consumer import __version__
from consumer.errors import (
    ConfigError,
    RedoAuthError,
    RedoError,
    RedoNotFoundError,
    RedoRejectedError,
    RedoRetryableError,
)
from consumer.metrics import REDO_IN_FLIGHT, REDO_REQUEST_DURATION, REDO_REQUESTS
from consumer.model import RedoCall
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
class _TransportFailure:
    """No HTTP answer at all; ``response_class`` is the metric label (timeout or connection)."""

    response_class: str
    detail: str


class RedoClient:
    """Sends ``RedoCall``s over one pooled HTTP/1.1 keep-alive client.

    ``base_url`` may carry a path prefix (the default is ``https://api.getredo.com/v2.2``); the
    request path is appended to it, never resolved against it, so the prefix is kept.
    ``timeout`` applies to each phase (connect, write, read, waiting for a pooled connection).
    """

    def __init__(
        self,
        base_url: str,
        secrets: SecretProvider,
        *,
        timeout: float = 10.0,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = _checked_base_url(base_url)
        self._secrets = secrets
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={
                "Accept": "application/json",
                "User-Agent": f"tracking-consumer/{__version__}",
            },
            transport=transport,
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
                self._base_url + request_path(call),
                {"Authorization": f"Bearer {secret}"},
                request_body(call),
            )
        finally:
            REDO_IN_FLIGHT.dec()
            REDO_REQUEST_DURATION.labels(kind).observe(time.perf_counter() - started)
        # Raised here, outside any ``except``: the httpx exception (whose request carries the
        # Authorization header) must not ride along as __context__ of ours.
        if isinstance(outcome, _TransportFailure):
            REDO_REQUESTS.labels(kind, outcome.response_class).inc()
            detail = outcome.detail.replace(secret, _REDACTED)
            raise RedoRetryableError(
                f"Redo {kind} call for fulfillment {call.fulfillment_id!r}: "
                f"{outcome.response_class}: {detail}"
            )
        REDO_REQUESTS.labels(kind, f"{outcome.status_code // 100}xx").inc()
        if outcome.is_success:
            return RedoResponse(outcome.status_code, _json_object(outcome))
        raise _error_for(outcome, call, secret)

    async def aclose(self) -> None:
        await self._http.aclose()

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
        self, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> httpx.Response | _TransportFailure:
        try:
            return await self._http.post(url, headers=headers, json=body)
        except httpx.TimeoutException as exc:
            return _TransportFailure("timeout", _describe(exc))
        except httpx.RequestError as exc:
            return _TransportFailure("connection", _describe(exc))


def _checked_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("REDO_API_URL", f"must be an http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


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


def _error_for(response: httpx.Response, call: RedoCall, secret: str) -> RedoError:
    code = response.status_code
    body = response.content[:MAX_ERROR_BODY_BYTES].decode("utf-8", "replace")
    # A proxy's error page may echo request headers back; the secret must not reach a log.
    body = body.replace(secret, _REDACTED)
    message = (
        f"Redo answered {code} to a {call.kind.value} call for fulfillment "
        f"{call.fulfillment_id!r}: {body[:_MESSAGE_BODY_CHARS]}"
    )
    if code == 429 or code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RedoRetryableError(message, status_code=code, body=body, retry_after=retry_after)
    if code == 404:
        return RedoNotFoundError(message, status_code=code, body=body)
    if code in (401, 403):
        return RedoAuthError(message, status_code=code, body=body)
    return RedoRejectedError(message, status_code=code, body=body)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The 2xx body as a JSON object; ``{}`` if it is not one, since the call did succeed."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(exc: httpx.RequestError) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
