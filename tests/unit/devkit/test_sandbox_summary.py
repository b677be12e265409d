"""The sandbox's summary (``GET /_sandbox/summary``), which the demo prints: only calls Redo
accepted count as status updates or automation events; every call counts by its answer."""

from __future__ import annotations

from devkit.sandbox import SandboxControl, SandboxServer
from tests.support.sandbox_requests import post

T1 = "2024-05-01T10:00:00.000Z"


def test_summary_splits_accepted_calls_into_status_updates_and_events(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    url = sandbox_server.url
    for status in ("in_transit", "in_transit", "stalled_in_transit", "arriving_early"):
        assert post(url, {"status": status, "datetime": T1}).status_code == 200
    sandbox.set_faults(fail_next=1)
    assert post(url, {"status": "delayed", "datetime": T1}).status_code == 503
    refused = post(url, {"status": "delivered", "datetime": T1}, headers={})
    assert refused.status_code == 401
    other = post(url, {"status": "delayed", "datetime": T1}, ids=("store-1", "order-2", "ful-2"))
    assert other.status_code == 200

    assert sandbox.summary() == {
        "calls": 7,
        "answers": {"200": 5, "503": 1, "401": 1},
        "accepted": {
            "status": {"in_transit": 2},
            "event": {"arriving_early": 1, "delayed": 1, "stalled_in_transit": 1},
        },
        "fulfillments": 2,
    }


def test_summary_of_an_empty_record(sandbox: SandboxControl) -> None:
    assert sandbox.summary() == {
        "calls": 0,
        "answers": {},
        "accepted": {"status": {}, "event": {}},
        "fulfillments": 0,
    }
