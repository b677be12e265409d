"""The Redo sandbox answers like Redo, rejects what its schema rejects, and injects faults."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from devkit.sandbox import SandboxControl, SandboxServer, SandboxWaitTimeout, schema
from tests.support.paths import REPO
from tests.support.sandbox_requests import SANDBOX_TOKEN, post

TOKEN = SANDBOX_TOKEN
T1, T2, T3, T4 = (f"2024-05-0{day}T10:00:00.000Z" for day in (1, 2, 3, 4))


def fulfillment_after(base_url: str, *bodies: dict[str, Any], fulfillment_id: str = "ful-1") -> Any:
    """Post each body; check every answer is a valid 200; return the last fulfillment."""
    response = None
    for body in bodies:
        response = post(base_url, body, ids=("store-1", "order-1", fulfillment_id))
        assert response.status_code == 200, response.text
        assert schema.first_error(schema.FULFILLMENT_RESPONSE, response.json()) is None
    assert response is not None
    return response.json()["fulfillment"]


def assert_error(response: httpx.Response, status: int, containing: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert schema.first_error(schema.ERROR, response.json()) is None
    assert containing in response.json()["error"]


# --- the endpoint ----------------------------------------------------------------------------


def test_valid_updates_get_a_200_valid_against_the_response_schema(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    fulfillment = fulfillment_after(
        sandbox_server.url,
        {"status": "pre_transit"},
        {
            "status": "in_transit",
            "datetime": T1,
            "message": "Departed facility",
            "location": {"city": "Memphis", "state": None, "country": "US", "postalCode": "38118"},
            "estimatedDeliveryDate": "2024-05-03T00:00:00.000Z",
        },
        {"status": "delayed", "datetime": None, "message": None, "estimatedDeliveryDate": None},
        {"status": "delivered", "datetime": T2},
    )
    assert fulfillment["id"] == "ful-1"
    assert fulfillment["lineItems"], "the response schema's lineItems must be filled"


def test_events_leave_the_status_and_history_keeps_arrival_order(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    first = fulfillment_after(sandbox_server.url, {"status": "in_transit", "datetime": T2})
    fulfillment = fulfillment_after(
        sandbox_server.url,
        {"status": "stalled_in_transit", "datetime": T3, "message": "No scan for 3 days"},
        {"status": "out_for_delivery", "datetime": T1, "location": {"city": "Lyon"}},
        {
            "status": "arriving_early",
            "datetime": T4,
            "estimatedDeliveryDate": "2024-05-04T00:00:00Z",
        },
    )
    assert fulfillment["status"] == "out_for_delivery"
    assert fulfillment["estimatedDeliveryDate"] == "2024-05-04"
    assert fulfillment["createdAt"] == first["createdAt"]
    assert fulfillment["deliveredAt"] is None
    assert [(e["status"], e["datetime"]) for e in fulfillment["trackingHistory"]] == [
        ("in_transit", T2),
        ("stalled_in_transit", T3),
        ("out_for_delivery", T1),
        ("arriving_early", T4),
    ]
    assert fulfillment["trackingHistory"][1]["message"] == "No scan for 3 days"
    assert fulfillment["trackingHistory"][2]["location"] == {"city": "Lyon"}


def test_an_event_on_a_new_fulfillment_leaves_it_unknown(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    assert fulfillment_after(sandbox_server.url, {"status": "delayed"})["status"] == "unknown"


def test_delivered_sets_delivered_at(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    fulfillment = fulfillment_after(sandbox_server.url, {"status": "delivered", "datetime": T3})
    assert (fulfillment["status"], fulfillment["deliveredAt"]) == ("delivered", T3)


def test_fulfillments_are_kept_apart(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    fulfillment_after(sandbox_server.url, {"status": "delivered"}, fulfillment_id="ful-a")
    other = fulfillment_after(sandbox_server.url, {"status": "in_transit"}, fulfillment_id="ful-b")
    assert (other["status"], len(other["trackingHistory"])) == ("in_transit", 1)
    [kept] = sandbox.fulfillments(fulfillment_id="ful-a")
    assert kept["fulfillment"]["status"] == "delivered"
    assert (kept["store_id"], kept["order_id"]) == ("store-1", "order-1")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"datetime": T1}, "'status' is a required property"),
        ({"status": "teleported"}, "$.status"),
        ({"status": 5}, "$.status"),
        ({"status": "in_transit", "datetime": "2024-13-01T00:00:00Z"}, "date-time"),
        ({"status": "in_transit", "datetime": "yesterday"}, "date-time"),
        ({"status": "in_transit", "estimatedDeliveryDate": "2024-05-03"}, "date-time"),
        ({"status": "in_transit", "message": 42}, "$.message"),
        ({"status": "in_transit", "location": "Memphis"}, "$.location"),
        ({"status": "in_transit", "location": {"city": 1}}, "$.location.city"),
        ([{"status": "in_transit"}], "is not of type 'object'"),
    ],
)
def test_bodies_breaking_the_request_schema_get_400(
    sandbox_server: SandboxServer, sandbox: SandboxControl, body: object, problem: str
) -> None:
    assert_error(post(sandbox_server.url, body), 400, problem)
    [recorded] = sandbox.calls()
    assert (recorded["status_code"], recorded["body"]) == (400, body)
    assert sandbox.fulfillments() == []


def test_non_json_body_gets_400_and_is_recorded_as_text(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    assert_error(post(sandbox_server.url, content=b"status=in_transit"), 400, "not valid JSON")
    assert sandbox.calls()[0]["body"] == "status=in_transit"


@pytest.mark.parametrize("position", [0, 1, 2])
def test_empty_path_segment_gets_400(
    sandbox_server: SandboxServer, sandbox: SandboxControl, position: int
) -> None:
    ids = ["store-1", "order-1", "ful-1"]
    ids[position] = ""
    response = post(sandbox_server.url, {"status": "in_transit"}, ids=(ids[0], ids[1], ids[2]))
    assert_error(response, 400, ("storeId", "orderId", "fulfillmentId")[position])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_missing_or_wrong_token_gets_401(
    sandbox_server: SandboxServer, sandbox: SandboxControl, headers: dict[str, str]
) -> None:
    assert_error(post(sandbox_server.url, {"status": "in_transit"}, headers=headers), 401, "token")
    assert sandbox.fulfillments() == []


def test_prefix_mounts_every_route_under_it() -> None:
    with SandboxServer(TOKEN, prefix="v2.2/") as server, SandboxControl(server.url) as sandbox:
        root = server.url.removesuffix("/v2.2")
        assert server.url.endswith("/v2.2")
        assert post(server.url, {"status": "in_transit"}).status_code == 200
        assert post(root, {"status": "in_transit"}).status_code == 404
        assert len(sandbox.calls()) == 1


# --- faults ----------------------------------------------------------------------------------


def test_fail_next_answers_the_status_then_recovers(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(fail_next={"count": 2, "status": 500})
    first = post(sandbox_server.url, {"status": "in_transit"})
    assert first.status_code == 500
    assert first.headers["Content-Type"].startswith("application/problem+json")
    assert schema.first_error(schema.PROBLEM, first.json()) is None
    assert sandbox.faults()["fail_next"] == {"count": 1, "status": 500}
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 500
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 200
    assert sandbox.faults()["fail_next"]["count"] == 0


def test_fail_next_defaults_to_503(sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    sandbox.set_faults(fail_next=1)
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 503


def test_rate_limit_next_answers_429_with_retry_after(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(rate_limit_next={"count": 1, "retry_after": 4})
    limited = post(sandbox_server.url, {"status": "in_transit"})
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "4")
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 200


def test_not_found_lasts_until_cleared(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(not_found=["ful-1"])
    for _ in range(2):
        assert_error(post(sandbox_server.url, {"status": "in_transit"}), 404, "not found")
    other = post(sandbox_server.url, {"status": "in_transit"}, ids=("store-1", "order-1", "ful-2"))
    assert other.status_code == 200
    sandbox.set_faults(not_found=[])
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 200


def test_drop_next_closes_the_connection_without_an_answer(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(drop_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post(sandbox_server.url, {"status": "in_transit"})
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 200
    assert [call["status_code"] for call in sandbox.calls()] == [None, 200]
    assert sandbox.stats() == {"dropped": 1, "200": 1}


def test_token_rotation_until_faults_are_cleared(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(token="rotated")
    assert "token" not in sandbox.faults()
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 401
    rotated = {"Authorization": "Bearer rotated"}
    assert post(sandbox_server.url, {"status": "in_transit"}, headers=rotated).status_code == 200
    sandbox.clear_faults()
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 200


def test_latency_delays_the_answer(sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    sandbox.set_faults(latency_ms=300, latency_jitter_ms=50)
    started = time.monotonic()
    assert post(sandbox_server.url, {"status": "in_transit"}).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_late_answer_is_applied_before_the_client_gives_up(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(late_answer_ms=2000)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            f"{sandbox_server.url}/stores/s/orders/o/fulfillments/f/shipment-status",
            json={"status": "in_transit"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=0.2,
        )
    assert [call["status_code"] for call in sandbox.calls()] == [200]
    assert sandbox.fulfillments()[0]["fulfillment"]["status"] == "in_transit"


@pytest.mark.parametrize(
    "faults",
    [
        {"explode": True},
        {"drop_next": -1},
        {"latency_ms": "slow"},
        {"fail_next": {"count": 1, "status": 200}},
        {"rate_limit_next": {"count": 1, "retry_in": 3}},
        {"token": ""},
    ],
)
def test_invalid_faults_are_refused_and_change_nothing(
    sandbox: SandboxControl, faults: dict[str, Any]
) -> None:
    before = sandbox.faults()
    with pytest.raises(RuntimeError, match="answered 400"):
        sandbox.set_faults(**faults)
    assert sandbox.faults() == before


# --- control API -----------------------------------------------------------------------------


def test_calls_are_recorded_and_filterable(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(fail_next=1)
    post(sandbox_server.url, {"status": "in_transit"}, ids=("s", "o", "f1"))
    post(sandbox_server.url, {"status": "in_transit"}, ids=("s", "o", "f1"))
    post(sandbox_server.url, {"status": "delayed"}, ids=("s", "o", "f2"))
    calls = sandbox.calls()
    assert [(c["seq"], c["fulfillment_id"], c["status_code"]) for c in calls] == [
        (1, "f1", 503),
        (2, "f1", 200),
        (3, "f2", 200),
    ]
    assert calls[2]["body"] == {"status": "delayed"}
    assert calls[0]["received_at"].endswith("Z")
    assert [c["seq"] for c in sandbox.calls(fulfillment_id="f1")] == [1, 2]
    assert [c["seq"] for c in sandbox.calls(status_code=503)] == [1]
    assert [c["seq"] for c in sandbox.successful_calls(fulfillment_id="f1")] == [2]
    assert sandbox.stats() == {"503": 1, "200": 2}


def test_bad_status_code_filter_is_a_400(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    assert_error(httpx.get(f"{sandbox_server.url}/_sandbox/calls?status_code=ok"), 400, "integer")


def test_reset_forgets_calls_and_fulfillments_but_keeps_faults(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    fulfillment_after(sandbox_server.url, {"status": "in_transit"}, {"status": "delivered"})
    sandbox.set_faults(not_found=["other"])
    sandbox.reset()
    assert sandbox.calls() == []
    assert sandbox.stats() == {}
    assert sandbox.faults()["not_found"] == ["other"]
    fresh = fulfillment_after(sandbox_server.url, {"status": "pre_transit"})
    assert (fresh["status"], len(fresh["trackingHistory"])) == ("pre_transit", 1)


def test_wait_for_a_count_of_successful_calls(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(fail_next=1)
    for _ in range(3):
        post(sandbox_server.url, {"status": "in_transit"})
    assert len(sandbox.wait_for(2, timeout=5)) == 3


def test_wait_for_a_predicate(sandbox_server: SandboxServer, sandbox: SandboxControl) -> None:
    post(sandbox_server.url, {"status": "delivered"})

    def delivered(calls: list[dict[str, Any]]) -> bool:
        return any(call["body"].get("status") == "delivered" for call in calls)

    assert len(sandbox.wait_for(delivered, timeout=5)) == 1


def test_wait_for_times_out_with_a_clear_message(
    sandbox_server: SandboxServer, sandbox: SandboxControl
) -> None:
    post(sandbox_server.url, {"status": "in_transit"})
    with pytest.raises(
        SandboxWaitTimeout, match=r"waiting for 2 successful calls; saw 1 calls"
    ) as caught:
        sandbox.wait_for(2, timeout=0.2)
    assert isinstance(caught.value, AssertionError)
    assert isinstance(caught.value, TimeoutError)


# --- running it ------------------------------------------------------------------------------


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = SandboxServer(TOKEN).url


def test_start_reports_a_port_already_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = SandboxServer(TOKEN, port=taken.getsockname()[1])
        with pytest.raises(OSError):
            server.start()
        server.stop()


def test_command_line_prints_its_url_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devkit.sandbox",
            "--token",
            TOKEN,
            "--port",
            "0",
            "--prefix",
            "/v2.2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], 20)
        assert readable, "the sandbox printed no SANDBOX_URL line within 20s"
        line = process.stdout.readline().strip()
        assert line.startswith("SANDBOX_URL=http://127.0.0.1:"), line
        url = line.removeprefix("SANDBOX_URL=")
        assert url.endswith("/v2.2")
        assert post(url, {"status": "in_transit"}).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
