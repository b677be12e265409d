"""Judge what Redo received against the scenario's oracle (``devkit.scenarios``: every status
call and rule event the stories call for, written from the stories, not from the consumer).

A call is identified by (fulfillment, status or rule, datetime). Delivery is at-least-once, so
each expected call must arrive at least once; its further copies are duplicates. Per
fulfillment, the first copies must arrive in the order of their datetimes (a story's scans and
rule detections are strictly ordered in time, except a rule detected at a scan's own time, which
may come either side of that scan's status call).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from devkit.sandbox.control import Call
from devkit.scenarios import EVENT_STATUSES, CallKey, Scenario, explain
from reliability.cluster import NO_FAULT, FaultLog

_EXAMPLES = 5


@dataclass
class Verdict:
    expected_statuses: int
    expected_events: int
    missing_statuses: int = 0
    missing_events: int = 0
    order_violations: int = 0
    """Fulfillments whose first copies arrived out of order."""
    duplicate_statuses: int = 0
    duplicate_events: int = 0
    unexpected: int = 0
    """Accepted calls the oracle does not have (e.g. a false stall)."""
    duplicate_causes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    """Why the run failed (missing, reordered) or what to look at (unexpected calls)."""
    unexplained: list[str] = field(default_factory=list)
    """Duplicates with no fault between their copies, explained with their stories."""

    @property
    def missing(self) -> int:
        return self.missing_statuses + self.missing_events

    @property
    def passed(self) -> bool:
        return self.missing == 0 and self.order_violations == 0


def judge(scenario: Scenario, calls: Iterable[Call], log: FaultLog, now: datetime) -> Verdict:
    """``calls``: everything the sandbox recorded, in arrival order (only 200s count)."""
    expected = scenario.expected_statuses() + scenario.expected_events(now)
    verdict = Verdict(
        expected_statuses=sum(scenario.expected_statuses().values()),
        expected_events=sum(scenario.expected_events(now).values()),
    )
    first_at: dict[CallKey, str] = {}
    copies: Counter[CallKey] = Counter()
    firsts: dict[str, list[CallKey]] = defaultdict(list)
    lonely: list[tuple[CallKey, str, str]] = []
    for call in calls:
        if call["status_code"] != 200:
            continue
        body = call["body"]
        key = (call["fulfillment_id"], body["status"], body["datetime"])
        copies[key] += 1
        if key not in expected:
            continue
        if key in first_at:
            is_event = key[1] in EVENT_STATUSES
            verdict.duplicate_events += is_event
            verdict.duplicate_statuses += not is_event
            cause = log.cause(first_at[key], call["received_at"])
            verdict.duplicate_causes[cause] += 1
            if cause == NO_FAULT:
                lonely.append((key, first_at[key], call["received_at"]))
        else:
            first_at[key] = call["received_at"]
            firsts[key[0]].append(key)
    missing = expected - copies
    verdict.missing_events = sum(n for k, n in missing.items() if k[1] in EVENT_STATUSES)
    verdict.missing_statuses = sum(missing.values()) - verdict.missing_events
    unexpected = Counter({k: n for k, n in copies.items() if k not in expected})
    verdict.unexpected = sum(unexpected.values())
    disordered = [f for f, keys in firsts.items() if _out_of_order(keys)]
    verdict.order_violations = len(disordered)
    if missing:
        verdict.problems.append(f"{sum(missing.values())} missing:\n{explain(missing, scenario)}")
    if disordered:
        shown = "\n".join(
            f"{f}: arrived {[(s, at) for _, s, at in firsts[f]]}" for f in disordered[:_EXAMPLES]
        )
        verdict.problems.append(f"{len(disordered)} fulfillments out of order:\n{shown}")
    if unexpected:
        verdict.problems.append(
            f"{verdict.unexpected} unexpected:\n{explain(unexpected, scenario, _EXAMPLES)}"
        )
    verdict.unexplained = [
        f"received at {first} and again at {again}: {explain([key], scenario)}"
        for key, first, again in lonely[:_EXAMPLES]
    ]
    return verdict


def _out_of_order(keys: list[CallKey]) -> bool:
    """The datetimes (ISO, one format, so ordered as strings) go backwards somewhere."""
    return any(later[2] < earlier[2] for earlier, later in pairwise(keys))
