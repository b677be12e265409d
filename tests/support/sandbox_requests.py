"""Requests to the Redo sandbox as Redo's clients make them, for the tests of the sandbox."""

from __future__ import annotations

from urllib.parse import quote

import httpx

SANDBOX_TOKEN = "test-token-0123456789"
"""The bearer token every test sandbox accepts (``tests/conftest.py`` starts them with it)."""


def post(
    base_url: str,
    body: object = None,
    *,
    ids: tuple[str, str, str] = ("store-1", "order-1", "ful-1"),
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    store, order, fulfillment = (quote(segment, safe="") for segment in ids)
    url = f"{base_url}/stores/{store}/orders/{order}/fulfillments/{fulfillment}/shipment-status"
    sent_headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"} if headers is None else headers
    if content is not None:
        return httpx.post(url, content=content, headers=sent_headers)
    return httpx.post(url, json=body, headers=sent_headers)
