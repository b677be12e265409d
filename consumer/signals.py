"""Every piece of state that crosses threads, in one object with one writer per field.

Three kinds of thread run: the asyncio **loop** (pipeline, deliverer, start-up), the **Kafka**
thread (the librdkafka consumer, ``consumer.kafka.source``; restore threads only read the
changelog and report back through it), and the **health** HTTP thread (``consumer.ops.health``),
which only reads. Each field below has exactly one writer thread; a reader sees a plain value
(a bool, an int, a float, an optional str), whose assignment is atomic under the GIL.

=======================  ================================  ============  ====================
field                    written by (the only writer)      read by       meaning
=======================  ================================  ============  ====================
``circuit_open``         loop: the deliverer's circuit     Kafka thread  Redo is down: pause
                                                                         (``backpressure``)
``auth_blocked``         loop: the deliverer, default      health        ``/readyz`` false
                         secret's breaker
``restoring``            Kafka thread: assign, position,   health        assignments whose
                         revoke, lose                                    state is loading
``joined``               Kafka thread: ``on_assign``       health        the group has us
``start_up_problem``     loop: ``prepare_topics``          health        why not joined yet
``held_writes``          loop: the pipeline's counter      health        refused Kafka writes
``unexpected_failures``  loop: the pipeline's counter      health        not alive: restart
``kafka_beat``           Kafka thread: every loop turn     health        liveness
``loop_beat``            loop: every second                health        liveness
caught-up verdicts       Kafka thread, as messages         loop          rules clock: wall
                         (``call_soon_threadsafe``)                      clock or stream time
=======================  ================================  ============  ====================

``held_writes`` and ``unexpected_failures`` are the pipeline's own int attributes, which only the
loop changes; ``watch_pipeline`` hands the object over once and the health thread reads the two
ints (no copy, so ``/readyz`` turns false as soon as ``/metrics`` shows the held write).

Messages, not shared fields, carry everything else, Kafka thread → loop, in order, through
``loop.call_soon_threadsafe`` (``consumer.kafka.handoff``): fetched batches (``accept``), restored
state (``attach``), released partitions (``detach``) and **caught-up verdicts**
(``set_caught_up``: queued behind the records already handed over, so the rules switch to the
wall clock only after those were accepted). ``drain`` runs on the loop while the Kafka thread
waits for its result (bounded). Per-partition offsets cross in ``PartitionWork``, whose own
docstring says which thread writes which field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol


class PipelineCounters(Protocol):
    """The two counters of the pipeline the health thread reads (the loop writes them)."""

    @property
    def writes_held(self) -> int: ...

    @property
    def unexpected_failures(self) -> int: ...


class _NoPipeline:
    writes_held = 0
    unexpected_failures = 0


class Signals:
    """The cross-thread state; see the module docstring for each field's writer and readers."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.circuit_open = False
        self.auth_blocked = False
        self.joined = False
        self.start_up_problem: str | None = None
        self.loop_beat = clock()
        self.kafka_beat: float | None = None  # no Kafka loop to watch before it starts
        self._pipeline: PipelineCounters = _NoPipeline()
        self._restoring: set[Hashable] = set()
        self._restoring_lock = threading.Lock()  # the set changes size while health counts it

    # --- loop ---------------------------------------------------------------------------------

    def beat_loop(self) -> None:
        """The asyncio loop turned."""
        self.loop_beat = self.clock()

    def watch_pipeline(self, pipeline: PipelineCounters) -> None:
        """Once, at start-up: where ``held_writes`` and ``unexpected_failures`` are counted."""
        self._pipeline = pipeline

    @property
    def held_writes(self) -> int:
        """Kafka writes held by a refusal: not ready meanwhile."""
        return int(self._pipeline.writes_held)

    @property
    def unexpected_failures(self) -> int:
        """Failures that left a record undone: not alive, so the pod restarts and replays it."""
        return int(self._pipeline.unexpected_failures)

    # --- Kafka thread -------------------------------------------------------------------------

    def beat_kafka(self) -> None:
        """The Kafka thread's loop turned."""
        self.kafka_beat = self.clock()

    def restore_started(self, assignment: Hashable) -> None:
        with self._restoring_lock:
            self._restoring.add(assignment)

    def restore_finished(self, assignment: Hashable) -> None:
        """Positioned, revoked or lost: this assignment no longer holds readiness back."""
        with self._restoring_lock:
            self._restoring.discard(assignment)

    @property
    def restoring(self) -> int:
        """How many assignments are restoring their state."""
        with self._restoring_lock:
            return len(self._restoring)
