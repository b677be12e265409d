"""The published table (Markdown, pasted into RELIABILITY.md) and the problems behind it. Only
missing and reordered calls fail a run; duplicates over the goal are printed as not met."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bench.report import _row
from reliability.run import Row

DUPLICATE_GOAL = 0.005

_HEADER = (
    "scenario",
    "faults injected",
    "events",
    "expected status / rule",
    "missing",
    "order violations",
    "dup status",
    "dup rule",
    "unexpected",
    "crashes",
    "peak RSS MiB per member",
    "last fault → all committed",
    "duplicates from",
)


def table(rows: Sequence[Row]) -> str:
    lines = [_row(_HEADER), _row(["---"] * len(_HEADER))]
    lines += [_row(_cells(row)) for row in rows]
    if len(rows) > 1:
        lines.append(_row(_total(rows)))
    return "\n".join(lines)


def problems(rows: Sequence[Row]) -> str:
    parts = []
    for row in rows:
        found = ([row.error] if row.error else []) + row.verdict.problems
        if row.verdict.unexplained:
            found.append("duplicates with no fault between their copies, e.g.:")
            found += row.verdict.unexplained
        if not row.mid_stream:
            found.append("the stream was all committed before the last fault ended")
        if found:
            parts.append(f"### {row.scenario}. {row.title}\n" + "\n".join(found))
    return "\n\n".join(parts)


def _cells(row: Row) -> list[str]:
    v = row.verdict
    faults = ", ".join(f"{n} {kind}" for kind, n in sorted(row.faults.items()))
    rss = " / ".join(f"{mib:.0f}" for mib in row.peak_rss_mib.values())
    settle = "—" if row.settle_s is None else f"{row.settle_s:.1f} s"
    if row.error:
        settle += " (**failed**)"
    return [
        f"{row.scenario}. {row.title}",
        faults or "none",
        f"{row.events:,}",
        f"{v.expected_statuses:,} / {v.expected_events:,}",
        _must_be_zero(v.missing),
        _must_be_zero(v.order_violations),
        _share(v.duplicate_statuses, v.expected_statuses),
        _share(v.duplicate_events, v.expected_events),
        str(v.unexpected),
        str(row.crashes),
        rss,
        settle,
        _causes(v.duplicate_causes),
    ]


def _total(rows: Sequence[Row]) -> list[str]:
    statuses = sum(r.verdict.expected_statuses for r in rows)
    events = sum(r.verdict.expected_events for r in rows)
    causes: Counter[str] = sum((r.verdict.duplicate_causes for r in rows), Counter())
    return [
        "**all scenarios**",
        f"{sum(sum(r.faults.values()) for r in rows)} faults",
        f"{sum(r.events for r in rows):,}",
        f"{statuses:,} / {events:,}",
        _must_be_zero(sum(r.verdict.missing for r in rows)),
        _must_be_zero(sum(r.verdict.order_violations for r in rows)),
        _share(sum(r.verdict.duplicate_statuses for r in rows), statuses),
        _share(sum(r.verdict.duplicate_events for r in rows), events),
        str(sum(r.verdict.unexpected for r in rows)),
        str(sum(r.crashes for r in rows)),
        f"max {max(max(r.peak_rss_mib.values(), default=0) for r in rows):.0f}",
        "—",
        _causes(causes),
    ]


def _must_be_zero(count: int) -> str:
    return "0" if count == 0 else f"**{count:,} (must be 0)**"


def _share(count: int, of: int) -> str:
    share = count / of if of else 0.0
    verdict = "" if share < DUPLICATE_GOAL else " (goal < 0.5 % not met)"
    return f"{count:,} ({share:.2%}){verdict}"


def _causes(causes: Counter[str]) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in causes.most_common()) or "—"
