"""``SandboxControl``: the sandbox's control API from synchronous code (tests, demo, benchmark)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

Call = dict[str, Any]
CallsPredicate = Callable[[list[Call]], bool]


class SandboxWaitTimeout(AssertionError, TimeoutError):
    """``wait_for`` ran out of time: a failed assertion in a test, a timeout anywhere else."""


class SandboxControl:
    """Reads the call record and sets faults of the sandbox at ``base_url`` (its ``url``)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/_sandbox", timeout=timeout)

    def calls(
        self, *, fulfillment_id: str | None = None, status_code: int | None = None
    ) -> list[Call]:
        """Recorded calls in arrival order; ``status_code`` None in a call means it was dropped."""
        params: dict[str, str | int] = {}
        if fulfillment_id is not None:
            params["fulfillment_id"] = fulfillment_id
        if status_code is not None:
            params["status_code"] = status_code
        calls: list[Call] = self._request("GET", "/calls", params=params)["calls"]
        return calls

    def successful_calls(self, *, fulfillment_id: str | None = None) -> list[Call]:
        return self.calls(fulfillment_id=fulfillment_id, status_code=200)

    def fulfillments(self, *, fulfillment_id: str | None = None) -> list[dict[str, Any]]:
        """Fulfillments as ``{store_id, order_id, fulfillment}`` (the 200 response's object)."""
        params = {} if fulfillment_id is None else {"fulfillment_id": fulfillment_id}
        found: list[dict[str, Any]] = self._request("GET", "/fulfillments", params=params)[
            "fulfillments"
        ]
        return found

    def reset(self) -> None:
        """Forget every recorded call and fulfillment (faults stay)."""
        self._request("DELETE", "/calls")

    def faults(self) -> dict[str, Any]:
        return self._request("GET", "/faults")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge faults, e.g. ``set_faults(fail_next={"count": 2, "status": 500})``,
        ``rate_limit_next={"count": 1, "retry_after": 3}``, ``not_found=["f1"]``,
        ``drop_next=1``, ``latency_ms=50``, ``latency_jitter_ms=10``, ``late_answer_ms=3000``,
        ``token="rotated"``.
        ``fail_next=N`` and ``rate_limit_next=N`` are shorthands for ``{"count": N}``.
        """
        return self._request("POST", "/faults", json=faults)

    def clear_faults(self) -> None:
        """No faults, and the token the sandbox started with."""
        self._request("DELETE", "/faults")

    def stats(self) -> dict[str, int]:
        """Calls by status code answered: ``{"200": n, "503": n, "dropped": n, ...}``."""
        counts: dict[str, int] = self._request("GET", "/stats")
        return counts

    def summary(self) -> dict[str, Any]:
        """``{"calls": n, "answers": {...}, "accepted": {"status": {...}, "event": {...}},
        "fulfillments": n}``: the 200-answered calls by kind (status update or automation
        event) and body ``status``, and every call by answer."""
        return self._request("GET", "/summary")

    def wait_for(
        self,
        condition: int | CallsPredicate,
        timeout: float = 10.0,
        *,
        interval: float = 0.05,
    ) -> list[Call]:
        """Poll until ``condition`` holds and return the calls then recorded.

        An int ``n`` means "at least n successful (200) calls"; a predicate gets every recorded
        call. Raises ``SandboxWaitTimeout`` (an AssertionError and a TimeoutError) naming what was
        awaited and what was seen when ``timeout`` seconds pass.
        """
        if isinstance(condition, int):
            holds = _at_least_successful(condition)
            description = f"{condition} successful calls"
        else:
            holds = condition
            description = getattr(condition, "__name__", repr(condition))
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls()
            if holds(calls):
                return calls
            if time.monotonic() >= deadline:
                raise SandboxWaitTimeout(
                    f"sandbox: timed out after {timeout}s waiting for {description}; "
                    f"saw {len(calls)} calls, by status {self.stats()}"
                )
            time.sleep(interval)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise RuntimeError(
                f"sandbox control {method} {path} answered {response.status_code}: {response.text}"
            )
        payload: dict[str, Any] = response.json() if response.content else {}
        return payload


def _at_least_successful(count: int) -> CallsPredicate:
    def holds(calls: list[Call]) -> bool:
        return sum(1 for call in calls if call["status_code"] == 200) >= count

    return holds
