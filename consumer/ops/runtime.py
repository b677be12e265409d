"""How the process runs its event loop and its garbage collector: tuned for a loop that is
CPU-bound on many short-lived objects (measured with ``make bench``; see the README).
"""

from __future__ import annotations

import asyncio
import gc

# Collect the young generation every 50,000 allocations instead of 700. Nearly everything a
# record allocates is freed by reference counting; with Python's defaults the cyclic collector
# re-scanned thousands of buffered records and shipment states over and over and took 23 % of
# the consumer's CPU in the benchmark (2 % with these thresholds).
GC_THRESHOLDS = (50_000, 20, 100)


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop: the consumer is CPU-bound on its loop, and uvloop's I/O and
    scheduling took a tenth off its CPU per event in the benchmark."""
    import uvloop

    return uvloop.new_event_loop()


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_objects() -> None:
    """What start-up built lives as long as the process: no collection scans it again."""
    gc.freeze()
