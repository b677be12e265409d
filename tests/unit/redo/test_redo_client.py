"""RedoClient against the real sandbox: success, each failure class, secrets and metrics."""

from __future__ import annotations

import asyncio
import socket
import traceback
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from pydantic import SecretStr

from consumer.errors import (
    ConfigError,
    RedoAuthError,
    RedoError,
    RedoNotFoundError,
    RedoRejectedError,
    RedoRetryableError,
)
from consumer.model import CallKind, Location, RedoCall
from consumer.redo.client import MAX_ERROR_BODY_BYTES, RedoClient, RedoResponse, parse_retry_after
from consumer.redo.payload import request_body
from consumer.redo.secrets import SecretProvider
from devkit.sandbox import SandboxControl, SandboxServer
from tests.support.redo_calls import AT, make_call
from tests.support.sandbox_requests import SANDBOX_TOKEN

TOKEN = SANDBOX_TOKEN


def send(
    base_url: str, call: RedoCall, *, secret: str = TOKEN, timeout: float = 5.0
) -> RedoResponse:
    async def go() -> RedoResponse:
        provider = SecretProvider(secret=SecretStr(secret))
        async with RedoClient(base_url, provider, timeout=timeout) as client:
            return await client.send(call)

    return asyncio.run(go())


def send_expecting(
    exc_type: type[RedoError], base_url: str, call: RedoCall, **kwargs: object
) -> RedoError:
    with pytest.raises(exc_type) as caught:
        send(base_url, call, **kwargs)  # type: ignore[arg-type]
    return caught.value


def requests_counted(kind: str, response_class: str) -> float:
    labels = {"kind": kind, "response_class": response_class}
    return REGISTRY.get_sample_value("tracking_redo_requests_total", labels) or 0.0


def test_success_returns_redo_answer_and_sends_the_payload(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    call = make_call(
        message="Departed facility",
        location=Location(city="Memphis", country="US"),
        estimated_delivery_date=date(2024, 5, 3),
    )
    response = send(sandbox_server.url, call)
    assert response.status_code == 200
    assert response.body["success"] is True
    assert response.body["fulfillment"]["status"] == "in_transit"
    assert response.body["fulfillment"]["estimatedDeliveryDate"] == "2024-05-03"
    [recorded] = sandbox.successful_calls()
    assert recorded["body"] == request_body(call)


def test_ids_with_slash_and_unicode_arrive_as_single_segments(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    call = make_call(store_id="shop/eu", order_id="#1001 é", fulfillment_id="東京/1?x")
    send(sandbox_server.url, call)
    [recorded] = sandbox.successful_calls()
    assert (recorded["store_id"], recorded["order_id"], recorded["fulfillment_id"]) == (
        "shop/eu",
        "#1001 é",
        "東京/1?x",
    )


@pytest.mark.parametrize("trailing", ["", "/"])
def test_path_prefix_of_the_base_url_is_kept(trailing: str) -> None:
    with SandboxServer(TOKEN, prefix="/v2.2") as server, SandboxControl(server.url) as sandbox:
        assert server.url.endswith("/v2.2")
        assert send(server.url + trailing, make_call()).status_code == 200
        assert len(sandbox.successful_calls()) == 1


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (500, RedoRetryableError),
        (502, RedoRetryableError),
        (503, RedoRetryableError),
        (403, RedoAuthError),
        (409, RedoRejectedError),
        (422, RedoRejectedError),
    ],
)
def test_status_classification(
    sandbox_server: SandboxServer, sandbox: SandboxControl, status: int, exc_type: type[RedoError]
) -> None:
    sandbox.set_faults(fail_next={"count": 1, "status": status})
    error = send_expecting(exc_type, sandbox_server.url, make_call())
    assert type(error) is exc_type
    assert error.status_code == status
    assert "injected" in error.body


def test_server_error_without_retry_after_leaves_it_to_the_backoff(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(fail_next=1)
    error = send_expecting(RedoRetryableError, sandbox_server.url, make_call())
    assert isinstance(error, RedoRetryableError)
    assert error.retry_after is None


def test_429_is_retryable_with_retry_after(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(rate_limit_next={"count": 1, "retry_after": 7})
    error = send_expecting(RedoRetryableError, sandbox_server.url, make_call())
    assert isinstance(error, RedoRetryableError)
    assert (error.status_code, error.retry_after) == (429, 7.0)


def test_404_is_not_found(sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    sandbox.set_faults(not_found=["ful-1"])
    error = send_expecting(RedoNotFoundError, sandbox_server.url, make_call())
    assert error.status_code == 404
    assert "not found" in error.body


def test_400_for_a_body_redo_rejects(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    error = send_expecting(RedoRejectedError, sandbox_server.url, make_call(status="teleported"))
    assert error.status_code == 400
    assert "status" in error.body
    assert "teleported" in str(error)


def test_401_with_wrong_secret_never_shows_the_secret(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    wrong = "wrong-secret-0c4f2b"
    error = send_expecting(RedoAuthError, sandbox_server.url, make_call(), secret=wrong)
    assert error.status_code == 401
    shown = str(error) + repr(error) + error.body + "".join(traceback.format_exception(error))
    assert wrong not in shown
    assert error.__cause__ is None
    assert error.__context__ is None


def test_timeout_is_retryable(sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    sandbox.set_faults(latency_ms=2000)
    before = requests_counted("status", "timeout")
    error = send_expecting(RedoRetryableError, sandbox_server.url, make_call(), timeout=0.2)
    assert error.status_code is None
    assert "timeout" in str(error)
    assert requests_counted("status", "timeout") == before + 1


def test_dropped_connection_is_retryable(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(drop_next=1)
    before = requests_counted("status", "connection")
    error = send_expecting(RedoRetryableError, sandbox_server.url, make_call())
    assert error.status_code is None
    assert "connection" in str(error)
    assert TOKEN not in str(error) + repr(error)
    assert requests_counted("status", "connection") == before + 1


def test_refused_connection_is_retryable() -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        error = send_expecting(RedoRetryableError, f"http://127.0.0.1:{port}", make_call())
    assert "Cannot connect" in str(error)


def test_metrics_count_each_request_by_kind_and_class(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    ok_before = requests_counted("event", "2xx")
    failed_before = requests_counted("event", "5xx")
    durations_before = (
        REGISTRY.get_sample_value("tracking_redo_request_duration_seconds_count", {"kind": "event"})
        or 0.0
    )
    event = make_call(kind=CallKind.EVENT, status="delayed")
    sandbox.set_faults(fail_next=1)
    send_expecting(RedoRetryableError, sandbox_server.url, event)
    send(sandbox_server.url, event)
    assert requests_counted("event", "2xx") == ok_before + 1
    assert requests_counted("event", "5xx") == failed_before + 1
    durations = REGISTRY.get_sample_value(
        "tracking_redo_request_duration_seconds_count", {"kind": "event"}
    )
    assert durations == durations_before + 2
    assert REGISTRY.get_sample_value("tracking_redo_in_flight_requests") == 0


def test_per_store_secret_and_rotation_picked_up_by_reload(
    tmp_path: Path, sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    stores = tmp_path / "stores.yaml"
    stores.write_text(f"store-a: {TOKEN}\n", encoding="utf-8")
    provider = SecretProvider(secret=SecretStr("global-secret"), store_secrets_file=stores)
    store_a, store_b = make_call(store_id="store-a"), make_call(store_id="store-b")

    async def scenario() -> None:
        async with RedoClient(sandbox_server.url, provider) as client:
            assert (await client.send(store_a)).status_code == 200
            with pytest.raises(RedoAuthError):
                await client.send(store_b)
            sandbox.set_faults(token="rotated-token")  # Redo now wants the new secret
            with pytest.raises(RedoAuthError):
                await client.send(store_a)
            stores.write_text("store-a: rotated-token\n", encoding="utf-8")
            with pytest.raises(RedoAuthError):
                await client.send(store_a)  # not re-read until reload()
            provider.reload()
            assert (await client.send(store_a)).status_code == 200

    asyncio.run(scenario())
    assert [c["status_code"] for c in sandbox.calls()] == [200, 401, 401, 401, 200]


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _send_to(handler: Handler, prefix: str = "") -> RedoResponse:
    """Send ``make_call()`` to a one-route aiohttp server answering with ``handler``."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        provider = SecretProvider(secret=SecretStr(TOKEN))
        async with RedoClient(str(server.make_url(prefix)), provider) as client:
            return await client.send(make_call())


def test_2xx_without_json_body_is_still_a_success() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def no_content(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.headers)))
        return web.Response(status=204)

    assert asyncio.run(_send_to(no_content, "/v2.2")) == RedoResponse(204, {})
    [(path, headers)] = seen
    assert path == "/v2.2/stores/store-1/orders/order-1/fulfillments/ful-1/shipment-status"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"


def test_error_body_is_truncated_and_an_echoed_secret_redacted() -> None:
    async def echo_headers(request: web.Request) -> web.Response:
        page = f"Bad gateway. Request headers: {dict(request.headers)}" + "x" * 10_000
        return web.Response(status=502, text=page)

    with pytest.raises(RedoRetryableError) as caught:
        asyncio.run(_send_to(echo_headers))
    assert MAX_ERROR_BODY_BYTES - 100 < len(caught.value.body) <= MAX_ERROR_BODY_BYTES
    assert "[REDACTED]" in caught.value.body
    assert TOKEN not in caught.value.body + str(caught.value)


@pytest.mark.parametrize("base_url", ["api.getredo.com/v2.2", "ftp://api.getredo.com", "http://"])
def test_base_url_must_be_http(base_url: str) -> None:
    with pytest.raises(ConfigError, match="REDO_API_URL"):
        RedoClient(base_url, SecretProvider(secret=SecretStr(TOKEN)))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=AT) == seconds
