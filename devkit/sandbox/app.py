"""The sandbox's aiohttp application: Redo's Update Fulfillment Status endpoint plus a control API.

A request to the endpoint goes through these steps, first answer wins:

1. injected latency (``latency_ms`` + uniform ``latency_jitter_ms``), before anything is decided;
2. ``drop_next``: the TCP connection is aborted without an answer;
3. ``fail_next`` (default 503) and ``rate_limit_next`` (429 + ``Retry-After``): failures of the
   infrastructure in front of Redo, so they come before authentication;
4. 401 unless ``Authorization: Bearer <token>`` matches the current token;
5. 400 for an empty path segment, a body that is not JSON, or one that breaks the request schema;
6. 404 for a fulfillment listed in ``not_found``;
7. 200 with the fulfillment, valid against the response schema; with ``late_answer_ms`` the
   update is applied and recorded at once but the answer waits that long (Redo did the work,
   the client may have timed out: a retry is then a duplicate).

Every answered (or dropped) request is recorded. The control API under ``/_sandbox/`` is not
authenticated; it lives under the same prefix as the endpoint so one base URL reaches both.
"""

from __future__ import annotations

import asyncio
import json
import random
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from devkit.sandbox import schema
from devkit.sandbox.state import FulfillmentKey, SandboxState, now_iso

STATE: web.AppKey[SandboxState] = web.AppKey("state", SandboxState)

_ENDPOINT = (
    "/stores/{storeId:[^/]*}/orders/{orderId:[^/]*}"
    "/fulfillments/{fulfillmentId:[^/]*}/shipment-status"
)
_PATH_PARAMETERS = ("storeId", "orderId", "fulfillmentId")
# Statuses the endpoint documents with ``{"error": ...}``; other errors are problem+json (RFC 7807).
_ORDERS_API_ERROR_STATUSES = frozenset({400, 401, 404})
_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_NOT_JSON = object()


def build_app(token: str, *, prefix: str = "") -> web.Application:
    """The sandbox accepting ``Bearer <token>``, with every route under ``prefix`` (e.g. /v2.2)."""
    prefix = normalize_prefix(prefix)
    app = web.Application()
    app[STATE] = SandboxState(token)
    app.router.add_post(prefix + _ENDPOINT, update_fulfillment_status)
    app.router.add_get(prefix + "/_sandbox/calls", get_calls)
    app.router.add_delete(prefix + "/_sandbox/calls", delete_calls)
    app.router.add_get(prefix + "/_sandbox/fulfillments", get_fulfillments)
    app.router.add_get(prefix + "/_sandbox/faults", get_faults)
    app.router.add_post(prefix + "/_sandbox/faults", post_faults)
    app.router.add_delete(prefix + "/_sandbox/faults", delete_faults)
    app.router.add_get(prefix + "/_sandbox/stats", get_stats)
    app.router.add_get(prefix + "/_sandbox/summary", get_summary)
    return app


def normalize_prefix(prefix: str) -> str:
    """``""`` or ``/a/b`` (leading slash, no trailing slash)."""
    stripped = prefix.strip("/")
    return f"/{stripped}" if stripped else ""


async def update_fulfillment_status(request: web.Request) -> web.StreamResponse:
    """Redo's endpoint, answering in the order of steps the module docstring lists."""
    state = request.app[STATE]
    faults = state.faults
    if faults.latency_ms or faults.latency_jitter_ms:
        delay_ms = faults.latency_ms + random.uniform(0, faults.latency_jitter_ms)
        await asyncio.sleep(delay_ms / 1000)
        faults = state.faults  # they may have changed while this request waited
    received_at = now_iso()
    key = (
        request.match_info["storeId"],
        request.match_info["orderId"],
        request.match_info["fulfillmentId"],
    )
    raw = await request.read()
    body = _parse_json(raw)
    recorded = raw.decode("utf-8", "replace") if body is _NOT_JSON else body

    def answer(
        status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        state.record(key, recorded, status, received_at)
        return _json(status, payload, headers)

    if faults.drop_next:
        faults.drop_next -= 1
        state.record(key, recorded, None, received_at)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never sent: the connection is gone
    if faults.fail_next.count:
        faults.fail_next.count -= 1
        status = faults.fail_next.status
        return answer(status, _error_payload(status, "failure injected by the sandbox"))
    if faults.rate_limit_next.count:
        faults.rate_limit_next.count -= 1
        retry_after = {"Retry-After": str(faults.rate_limit_next.retry_after)}
        return answer(429, _error_payload(429, "rate limit injected by the sandbox"), retry_after)
    if request.headers.get("Authorization") != f"Bearer {faults.token}":
        return answer(401, _error_payload(401, "invalid or missing API token"))
    valid = _validated(key, body)
    if isinstance(valid, str):
        return answer(400, _error_payload(400, valid))
    if key[2] in faults.not_found:
        return answer(404, _error_payload(404, "fulfillment not found"))
    fulfillment = state.fulfillment(key, received_at)
    fulfillment.apply(valid, received_at)
    response = answer(200, {"success": True, "fulfillment": fulfillment.to_json()})
    if faults.late_answer_ms:
        await asyncio.sleep(faults.late_answer_ms / 1000)
    return response


async def get_calls(request: web.Request) -> web.Response:
    """The call record, optionally only one fulfillment's and/or one status code's calls."""
    calls = request.app[STATE].calls
    fulfillment_id = request.query.get("fulfillment_id")
    if fulfillment_id is not None:
        calls = [call for call in calls if call["fulfillment_id"] == fulfillment_id]
    status_code = request.query.get("status_code")
    if status_code is not None:
        if not status_code.isdigit():
            return _json(400, {"error": f"status_code must be an integer, got {status_code!r}"})
        calls = [call for call in calls if call["status_code"] == int(status_code)]
    return _json(200, {"calls": calls})


async def delete_calls(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.Response(status=204)


async def get_fulfillments(request: web.Request) -> web.Response:
    fulfillment_id = request.query.get("fulfillment_id")
    return _json(
        200,
        {
            "fulfillments": [
                {"store_id": store_id, "order_id": order_id, "fulfillment": f.to_json()}
                for (store_id, order_id, f_id), f in request.app[STATE].fulfillments.items()
                if fulfillment_id is None or f_id == fulfillment_id
            ]
        },
    )


async def get_faults(request: web.Request) -> web.Response:
    return _json(200, request.app[STATE].faults.public())


async def post_faults(request: web.Request) -> web.Response:
    """Merge the posted keys into the faults in force; 400 (and no change) if any is invalid."""
    state = request.app[STATE]
    update = _parse_json(await request.read())
    if not isinstance(update, dict):
        return _json(400, {"error": "body must be a JSON object of faults"})
    try:
        state.faults = state.faults.merged(update)
    except ValidationError as exc:
        return _json(400, {"error": str(exc)})
    return _json(200, state.faults.public())


async def delete_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.clear_faults()
    return _json(200, state.faults.public())


async def get_stats(request: web.Request) -> web.Response:
    return _json(200, request.app[STATE].stats())


async def get_summary(request: web.Request) -> web.Response:
    return _json(200, request.app[STATE].summary())


def _parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _validated(key: FulfillmentKey, body: object) -> dict[str, Any] | str:
    """The body if the request is valid, else what is wrong with it."""
    for name, value in zip(_PATH_PARAMETERS, key, strict=True):
        if not value:
            return f"path parameter {name} is empty"
    if body is _NOT_JSON:
        return "request body is not valid JSON"
    problem = schema.first_error(schema.REQUEST, body)
    if problem is not None:
        return f"request body {problem}"
    assert isinstance(body, dict)  # the schema requires an object
    return body


def _error_payload(status: int, detail: str) -> dict[str, Any]:
    if status in _ORDERS_API_ERROR_STATUSES:
        return {"error": detail}
    return {"type": "about:blank", "title": _PHRASES.get(status, "Error"), "detail": detail}


def _json(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    problem = status >= 300 and status not in _ORDERS_API_ERROR_STATUSES
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/problem+json" if problem else "application/json",
        headers=headers,
    )
