"""What the sandbox remembers: injected faults, every call it answered, and each fulfillment.

All of it lives on the server's event loop and is touched only there, so nothing is locked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Redo's event types (per the API page): they add history but leave the current status alone.
EVENT_TYPES = frozenset({"stalled_in_transit", "delayed", "arriving_early"})
INITIAL_STATUS = "unknown"
DROPPED = "dropped"

# A fixed, plausible line item: the response schema requires one, the sandbox has no orders.
_LINE_ITEM = {
    "id": "sandbox-line-item-1",
    "quantity": 1,
    "title": "Sandbox Widget",
    "productId": "sandbox-product-1",
    "variantId": "sandbox-variant-1",
    "sku": "SANDBOX-WIDGET",
}


def _count_shorthand(value: object) -> object:
    """Let ``fail_next=3`` stand for ``fail_next={"count": 3}``."""
    return {"count": value} if isinstance(value, int) else value


class FailNext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=0, ge=0)
    status: int = Field(default=503, ge=400, le=599)


class RateLimitNext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=0, ge=0)
    retry_after: int = Field(default=1, ge=0)


class Faults(BaseModel):
    """The faults in force; ``POST /_sandbox/faults`` merges its keys into them."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    late_answer_ms: float = Field(default=0.0, ge=0)
    fail_next: Annotated[FailNext, BeforeValidator(_count_shorthand)] = FailNext()
    rate_limit_next: Annotated[RateLimitNext, BeforeValidator(_count_shorthand)] = RateLimitNext()
    not_found: frozenset[str] = frozenset()
    drop_next: int = Field(default=0, ge=0)
    token: str = Field(min_length=1)

    def merged(self, update: dict[str, Any]) -> Faults:
        """These faults with ``update``'s keys replaced; raises ``pydantic.ValidationError``."""
        return Faults.model_validate({**self.model_dump(), **update})

    def public(self) -> dict[str, Any]:
        """The faults as JSON, without the token (the control API is unauthenticated)."""
        return self.model_dump(mode="json", exclude={"token"})


@dataclass(slots=True)
class Fulfillment:
    """One fulfillment as Redo would return it after the updates the sandbox received."""

    id: str
    created_at: str
    status: str = INITIAL_STATUS
    estimated_delivery_date: str | None = None
    delivered_at: str | None = None
    tracking_history: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, body: dict[str, Any], received_at: str) -> None:
        """Apply a valid request body: statuses move the status, events only add history."""
        status: str = body["status"]
        at = body.get("datetime") or received_at
        if status not in EVENT_TYPES:
            self.status = status
            if status == "delivered":
                self.delivered_at = at
        eta = body.get("estimatedDeliveryDate")
        if eta:
            self.estimated_delivery_date = eta[:10]  # the date as written, like Redo's YYYY-MM-DD
        entry: dict[str, Any] = {
            "message": body.get("message") or "",
            "status": status,
            "datetime": at,
        }
        if body.get("location") is not None:
            entry["location"] = body["location"]
        self.tracking_history.append(entry)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": self.created_at,
            "lineItems": [_LINE_ITEM],
            "trackingCompany": None,
            "trackingNumber": None,
            "status": self.status,
            "estimatedDeliveryDate": self.estimated_delivery_date,
            "deliveredAt": self.delivered_at,
            "trackingHistory": self.tracking_history,
        }


FulfillmentKey = tuple[str, str, str]


class SandboxState:
    """Faults, the call record and the fulfillments of one sandbox."""

    def __init__(self, token: str) -> None:
        self._initial_token = token
        self.faults = Faults(token=token)
        self.calls: list[dict[str, Any]] = []
        self.status_counts: Counter[str] = Counter()
        self.fulfillments: dict[FulfillmentKey, Fulfillment] = {}

    def record(
        self, key: FulfillmentKey, body: object, status_code: int | None, received_at: str
    ) -> None:
        """Record one call; ``status_code`` None means the connection was dropped unanswered."""
        store_id, order_id, fulfillment_id = key
        self.calls.append(
            {
                "seq": len(self.calls) + 1,
                "store_id": store_id,
                "order_id": order_id,
                "fulfillment_id": fulfillment_id,
                "body": body,
                "status_code": status_code,
                "received_at": received_at,
            }
        )
        self.status_counts[DROPPED if status_code is None else str(status_code)] += 1

    def fulfillment(self, key: FulfillmentKey, received_at: str) -> Fulfillment:
        """The fulfillment for ``key``, created on first use (the sandbox knows every ID)."""
        found = self.fulfillments.get(key)
        if found is None:
            found = self.fulfillments[key] = Fulfillment(id=key[2], created_at=received_at)
        return found

    def reset(self) -> None:
        """Forget calls and fulfillments; faults stay."""
        self.calls.clear()
        self.status_counts.clear()
        self.fulfillments.clear()

    def clear_faults(self) -> None:
        """No faults, and the token the sandbox started with."""
        self.faults = Faults(token=self._initial_token)

    def stats(self) -> dict[str, int]:
        """Calls by status code answered (``"dropped"`` for connections closed unanswered)."""
        return dict(self.status_counts)

    def summary(self) -> dict[str, Any]:
        """What Redo accepted, the way its automations see it: the 200-answered calls split into
        status updates and automation events, each counted by body ``status``, plus every call
        by answer. A demo or a person at a terminal reads this instead of the whole record."""
        accepted: dict[str, Counter[str]] = {"status": Counter(), "event": Counter()}
        fulfillments: set[str] = set()
        for call in self.calls:
            body = call["body"]
            if call["status_code"] != 200 or not isinstance(body, dict):
                continue
            status = str(body["status"])
            accepted["event" if status in EVENT_TYPES else "status"][status] += 1
            fulfillments.add(call["fulfillment_id"])
        return {
            "calls": len(self.calls),
            "answers": self.stats(),
            "accepted": {kind: dict(sorted(counts.items())) for kind, counts in accepted.items()},
            "fulfillments": len(fulfillments),
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
