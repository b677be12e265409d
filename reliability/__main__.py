"""``python -m reliability`` (``make reliability``): run scenarios a to e on a local broker and
the Redo sandbox, print the table, and exit 1 when any call is missing or reordered (or a
scenario could not finish). ``--short`` is the CI size; ``--soak`` runs the long-run memory
soak instead (``make reliability SOAK=1``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.__main__ import _code_version, _machine
from reliability import report
from reliability.faults import FULL, SCENARIOS, SHORT
from reliability.run import RunSettings, environment, run_scenario
from reliability.soak import SoakSettings, run_soak

SHORT_SHIPMENTS = 300
SHORT_PACE_S = 25.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--scenarios", default="abcde", help="which of a-e, e.g. ab (abcde)")
    parser.add_argument("--short", action="store_true", help="CI size: seconds, not minutes")
    parser.add_argument("--shipments", type=int, help="5,000 (300 with --short)")
    parser.add_argument("--members", type=int, default=3, help="consumer processes (3)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="Redo's answer time (20)")
    parser.add_argument("--pace-s", type=float, help="the stream's length unbroken (150; 25)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--soak", action="store_true", help="run the memory soak instead")
    parser.add_argument("--soak-shipments", type=int, default=SoakSettings().shipments)
    parser.add_argument("--soak-rate", type=float, default=SoakSettings().rate)
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {sorted(SCENARIOS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.soak:
        text, ok = run_soak(SoakSettings(shipments=args.soak_shipments, rate=args.soak_rate))
    else:
        settings = RunSettings(
            shipments=args.shipments or (SHORT_SHIPMENTS if args.short else 5000),
            members=args.members,
            latency_ms=args.latency_ms,
            pace_s=args.pace_s or (SHORT_PACE_S if args.short else RunSettings().pace_s),
            seed=args.seed,
            scale=SHORT if args.short else FULL,
        )
        rows = []
        with environment(settings.latency_ms) as (kafka, redo):
            for name in args.scenarios:
                rows.append(run_scenario(name, kafka, redo, settings))
                print(report.table(rows[-1:]), flush=True)
        text = f"{_machine()}; {_code_version()}\n\n{report.table(rows)}\n\n{report.problems(rows)}"
        ok = all(row.passed for row in rows)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
