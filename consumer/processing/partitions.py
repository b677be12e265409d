"""Partitions: the per-shipment state of each attached partition, and its rewrites on attach.

Contract: ``attach`` builds a partition's ``PartitionStore`` from its restored states (a
partition revoked meanwhile is ignored) and queues the rewrites of fenced states and
tombstones on their shipments' FIFOs; from then on its records are processed. A store that
cannot be built is an unexpected failure (each bad state is quarantined inside). ``detach``
forgets partitions. ``stores`` is shared with the stages that read it.
"""

from __future__ import annotations

from collections.abc import Iterable

from consumer.kafka.offsets import PartitionWork
from consumer.ops import metrics
from consumer.processing.done import Done
from consumer.processing.jobs import Jobs
from consumer.processing.persist import Persist
from consumer.rules import RulesConfig
from consumer.state.packed import RestoredStates
from consumer.state.store import PartitionStore


class Partitions:
    def __init__(self, rules: RulesConfig, persist: Persist, jobs: Jobs, done: Done) -> None:
        self._rules = rules
        self._persist = persist
        self._jobs = jobs
        self._done = done
        self.stores: dict[PartitionWork, PartitionStore] = {}

    def attach(self, work: PartitionWork, restored: RestoredStates) -> None:
        """A partition's state was restored: its records may now be processed."""
        if work.revoked:
            return
        try:
            store = PartitionStore(self._rules, restored)
        except Exception:  # each bad state is quarantined inside; this would be a bug
            self._done.failed_unexpectedly("attaching a restored partition", work)
            return
        self.stores[work] = store
        for fulfillment_id in restored.rewrite:
            # A former owner's late write landed after this newer state: write the newer one
            # again, or compaction (the key's last record wins) would bring the older back.
            job = self._persist.rewrite(work, store, fulfillment_id)
            self._jobs.submit(fulfillment_id, work, None, job)
        for fulfillment_id, offset in restored.rewrite_tombstones.items():
            job = self._persist.rewrite_tombstone(work, fulfillment_id, offset)
            self._jobs.submit(fulfillment_id, work, None, job)
        self.update_gauge()

    def detach(self, works: Iterable[PartitionWork]) -> None:
        for work in works:
            self.stores.pop(work, None)
        self.update_gauge()

    def update_gauge(self) -> None:
        metrics.SHIPMENTS_IN_STATE.set(sum(len(s) for s in self.stores.values()))
