"""Which offsets may be committed: the highest contiguous *done* offset + 1, per partition.

Offsets are registered in fetch order and marked done in any order (calls for different
fulfillments finish out of order). Only the done prefix may be committed, so an offset that is
still in flight holds back every later one: nothing is committed past a record that is not done.
Kafka offsets can have gaps (compaction, transaction markers); the prefix follows the registered
order, not ``offset + 1`` arithmetic.

Thread-safe: the Kafka thread registers and commits, the asyncio loop marks records done.
Which thread writes which field of ``PartitionWork``:

===================  ==================================  =======================================
field                written by                          read by
===================  ==================================  =======================================
``_outstanding``     Kafka (``register``, append) and    Kafka only as ``len()`` (``buffered``),
                     loop (``done``, pop the done head)  under ``_lock``
``_done_early``      loop only (``done``)                loop only: the Kafka thread never
                                                         iterates it
``committable``      loop (``done``); Kafka once, in     Kafka (``to_commit``: one int, under
                     ``start_at``, before any record of  ``_lock``)
                     this assignment was handed over
``committed``        Kafka (``start_at``, after commits)  Kafka, loop (read only)
``next_offset``      Kafka (``start_at``, hand-over)     Kafka; loop (read only)
``revoked``          Kafka (``OffsetTracker.revoke``);   loop, restore threads (a bool)
                     loop (``Jobs.drain``); both only
                     ever set it to True
``given_up``,        loop                                loop; Kafka reads ``timers_queued`` as
``caught_up``,                                           an int inside ``buffered``
``timers_queued``
===================  ==================================  =======================================

So the Kafka thread reads only ints computed under the lock (``to_commit``, ``buffered``), never
a structure the loop is mutating; the deque and the set change only under ``_lock``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class PartitionWork:
    """One assignment of one partition. A re-assignment gets a new object, so late completions
    of work fetched under an earlier assignment cannot touch the new one."""

    topic: str
    partition: int
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _outstanding: deque[int] = field(default_factory=deque, repr=False)
    _done_early: set[int] = field(default_factory=set, repr=False)
    committable: int | None = None
    committed: int | None = None
    revoked: bool = False
    given_up: bool = False
    """Owned by the loop: the revoke's drain is over; calls still retrying stop now."""
    next_offset: int | None = None
    caught_up: bool = False
    """Owned by the loop: the clock follows the wall clock (``Processor.set_caught_up``)."""
    timers_queued: int = 0
    """Owned by the loop: timer jobs queued and not finished; they count toward ``buffered``."""

    def register(self, offset: int) -> None:
        with self._lock:
            self._outstanding.append(offset)

    def done(self, offset: int) -> None:
        with self._lock:
            self._done_early.add(offset)
            while self._outstanding and self._outstanding[0] in self._done_early:
                head = self._outstanding.popleft()
                self._done_early.discard(head)
                self.committable = head + 1

    @property
    def buffered(self) -> int:
        """Records fetched and not yet done, and timer jobs queued: what the partition holds in
        memory, which backpressure bounds."""
        with self._lock:
            return len(self._outstanding) + self.timers_queued

    def start_at(self, offset: int, *, commit: bool) -> None:
        """The partition was positioned at ``offset`` (Kafka thread): nothing before it can be
        replayed. ``commit``: there is no committed offset yet, so commit this one."""
        with self._lock:
            self.next_offset = offset
            if commit:
                self.committable = offset
            else:
                self.committed = offset

    def to_commit(self) -> int | None:
        """The offset to commit now, or None when nothing new is done (Kafka thread: reads the
        int the loop's ``done`` published, not the done set)."""
        with self._lock:
            if self.committable is None or self.committable == self.committed:
                return None
            return self.committable


class OffsetTracker:
    """The current ``PartitionWork`` of every assigned partition."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[tuple[str, int], PartitionWork] = {}

    def assign(self, topic: str, partition: int) -> PartitionWork:
        work = PartitionWork(topic, partition)
        with self._lock:
            self._partitions[(topic, partition)] = work
        return work

    def revoke(self, topic: str, partition: int) -> PartitionWork | None:
        with self._lock:
            work = self._partitions.pop((topic, partition), None)
        if work is not None:
            work.revoked = True
        return work

    def get(self, topic: str, partition: int) -> PartitionWork | None:
        with self._lock:
            return self._partitions.get((topic, partition))

    def all(self) -> list[PartitionWork]:
        with self._lock:
            return list(self._partitions.values())

    @property
    def buffered(self) -> int:
        return sum(work.buffered for work in self.all())
