"""The tables the benchmark prints (Markdown, so a run can be pasted into bench/README.md) and
the issue's targets read off them. Nothing here asserts: a missed target is printed as missed.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.contenders import AIOHTTP, HTTPX, LABELS, NAIVE, TRACKING
from bench.measurement import Measurement

TARGET_VS_NAIVE = 50.0
TARGET_VS_CEILING = 0.8
TARGET_EVENTS_PER_S_AT_0MS = 5000.0
TARGET_VS_FLOOR = 1.3

_COMMON_HEADER = (
    "events/s",
    "calls/s",
    "p50 ms",
    "p99 ms",
    "peak RSS MiB",
    "startup s",
    "CPU µs/event",
    "÷ floor",
    "CPU cores: contender / Redo stand-in / broker / other",
)


def contenders_table(rows: Sequence[Measurement], full_events: int) -> str:
    header = ("contender", "latency", "events", *_COMMON_HEADER, "(d) ÷ row events/s")
    lines = [_row(header), _row(["---"] * len(header))]
    for row in rows:
        reference = _find(rows, TRACKING, row.latency_ms)
        ratio = (
            "—"
            if reference is None or row is reference
            else f"{reference.events_per_s / row.events_per_s:.1f}x"
        )
        events = f"{row.events:,}" + (" (sample)" if row.events < full_events else "")
        lines.append(
            _row(
                [
                    LABELS[row.contender],
                    f"{row.latency_ms} ms",
                    events,
                    *_cells(row, _find(rows, AIOHTTP, row.latency_ms)),
                    ratio,
                ]
            )
        )
    return "\n".join(lines)


def scale_table(rows: Sequence[Measurement]) -> str:
    header = ("processes", "latency", "events", *_COMMON_HEADER, "speed-up vs 1")
    lines = [_row(header), _row(["---"] * len(header))]
    for row in rows:
        single = next(
            (r for r in rows if r.processes == 1 and r.latency_ms == row.latency_ms), None
        )
        speedup = "—" if single is None else f"{row.events_per_s / single.events_per_s:.2f}x"
        lines.append(
            _row(
                [
                    str(row.processes),
                    f"{row.latency_ms} ms",
                    f"{row.events:,}",
                    *_cells(row, None),
                    speedup,
                ]
            )
        )
    return "\n".join(lines)


def targets(rows: Sequence[Measurement]) -> str:
    """The issue's three targets, each with the measured value and met / NOT met."""
    lines = []
    tracking_50 = _find(rows, TRACKING, 50)
    naive_50 = _find(rows, NAIVE, 50)
    ceiling_50 = _find(rows, HTTPX, 50)
    same_client_50 = _find(rows, AIOHTTP, 50)
    tracking_0 = _find(rows, TRACKING, 0)
    if tracking_50 and naive_50:
        ratio = tracking_50.events_per_s / naive_50.events_per_s
        lines.append(
            f"- 50 ms: (d) ÷ (a) = {ratio:.1f}x (target ≥ {TARGET_VS_NAIVE:.0f}x): "
            + _verdict(ratio >= TARGET_VS_NAIVE)
        )
    if tracking_50 and ceiling_50:
        share = tracking_50.events_per_s / ceiling_50.events_per_s
        lines.append(
            f"- 50 ms: (d) ÷ (c) = {share:.0%} of the httpx ceiling "
            f"(target ≥ {TARGET_VS_CEILING:.0%}): " + _verdict(share >= TARGET_VS_CEILING)
        )
    if tracking_50 and same_client_50:
        share = tracking_50.events_per_s / same_client_50.events_per_s
        lines.append(
            f"- 50 ms: (d) ÷ (c') = {share:.0%} of the aiohttp ceiling, the HTTP client (d) "
            f"uses (not an issue target: the like-for-like reading of the one above): "
            + _verdict(share >= TARGET_VS_CEILING)
        )
    floor_0 = _find(rows, AIOHTTP, 0)
    if tracking_0 and floor_0:
        ratio = tracking_0.cpu_ms_per_event / floor_0.cpu_ms_per_event
        lines.append(
            f"- 0 ms: (d) spends {tracking_0.cpu_ms_per_event * 1000:.0f} µs of CPU per event, "
            f"the bare aiohttp loop (c') {floor_0.cpu_ms_per_event * 1000:.0f} µs per request "
            f"(the HTTP floor): {ratio:.2f}x (target ≤ {TARGET_VS_FLOOR}x): "
            + _verdict(ratio <= TARGET_VS_FLOOR)
        )
    if tracking_0:
        rate = tracking_0.events_per_s
        lines.append(
            f"- 0 ms: (d) sustains {rate:,.0f} events/s "
            f"(target ≥ {TARGET_EVENTS_PER_S_AT_0MS:,.0f}): "
            + _verdict(rate >= TARGET_EVENTS_PER_S_AT_0MS)
        )
    return "\n".join(lines)


def _cells(row: Measurement, floor: Measurement | None) -> list[str]:
    """The common cells; ``floor`` is the bare aiohttp row at the same latency, if measured."""
    latency = row.latency
    cpu = row.cpu
    per_floor = "—" if floor is None else f"{row.cpu_ms_per_event / floor.cpu_ms_per_event:.2f}x"
    return [
        f"{row.events_per_s:,.0f}",
        f"{row.calls_per_s:,.0f}"
        + (f" ({row.errors} not 200)" if row.errors else "")
        + (f" (**{row.missing} scans never called**)" if row.missing else ""),
        "—" if latency is None else f"{latency.p50_ms:.0f}",
        "—" if latency is None else f"{latency.p99_ms:.0f}",
        f"{row.rss_mb:.0f}",
        f"{row.startup_s:.1f}",
        f"{row.cpu_ms_per_event * 1000:.0f}",
        per_floor,
        f"{cpu.contender:.2f} / {cpu.sandbox:.2f} / {cpu.broker:.2f} / {cpu.other:.2f}",
    ]


def _find(rows: Sequence[Measurement], contender: str, latency_ms: int) -> Measurement | None:
    return next((r for r in rows if r.contender == contender and r.latency_ms == latency_ms), None)


def _verdict(met: bool) -> str:
    return "met" if met else "**NOT met**"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
