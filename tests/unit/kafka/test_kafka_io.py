"""The pause/resume decision of the Kafka thread (``consumer.kafka.backpressure.backpressure``)."""

from __future__ import annotations

from consumer.kafka.backpressure import backpressure
from consumer.kafka.offsets import PartitionWork

LIMIT = 10


def work(partition: int, buffered: int, *, restored: bool = True) -> PartitionWork:
    assigned = PartitionWork("t", partition)
    for offset in range(buffered):
        assigned.register(offset)
    assigned.next_offset = buffered if restored else None
    return assigned


def test_a_partition_pauses_at_the_limit_and_resumes_at_half_of_it() -> None:
    full, filling = work(0, LIMIT), work(1, LIMIT - 1)
    assert backpressure([full, filling], set(), limit=LIMIT, circuit_open=False) == ([("t", 0)], [])

    draining, drained = work(0, LIMIT // 2 + 1), work(1, LIMIT // 2)
    paused = {("t", 0), ("t", 1)}
    assert backpressure([draining, drained], paused, limit=LIMIT, circuit_open=False) == (
        [],
        [("t", 1)],
    )


def test_an_open_circuit_holds_every_partition_while_records_wait_for_its_probe() -> None:
    works = [work(0, 3), work(1, 0)]
    pause, resume = backpressure(works, set(), limit=LIMIT, circuit_open=True)
    assert (pause, resume) == ([("t", 0), ("t", 1)], [])
    assert backpressure(works, set(pause), limit=LIMIT, circuit_open=True) == ([], [])


def test_an_open_circuit_with_nothing_buffered_lets_records_in_to_probe_it() -> None:
    # e.g. a rebalance took away every partition whose calls were waiting for the probe
    works = [work(0, 0), work(1, 0)]
    paused = {("t", 0), ("t", 1)}
    assert backpressure(works, paused, limit=LIMIT, circuit_open=True) == (
        [],
        [("t", 0), ("t", 1)],
    )


def test_a_partition_still_restoring_is_left_paused() -> None:
    restoring = work(0, 0, restored=False)
    assert backpressure([restoring], {("t", 0)}, limit=LIMIT, circuit_open=False) == ([], [])
