"""The fault injectors of scenarios a to d, each a function run on its own thread against a
``Cluster``; scenario e runs all of them at once. Durations come from ``Scale``, so the full run
and the CI run share every line of the schedule."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from reliability.cluster import Cluster


@dataclass(frozen=True)
class Scale:
    """How much of each fault: the full run's values are the issue's."""

    member_kills: int = 20
    kill_gap_s: tuple[float, float] = (1.0, 6.0)
    broker_kills: int = 2
    broker_gap_s: tuple[float, float] = (10.0, 20.0)
    broker_down_s: tuple[float, float] = (2.0, 6.0)
    redo_gone_s: float = 120.0
    fault_run_s: float = 15.0
    """How long each run of 503s and the 429 storm last."""
    slow_s: float = 20.0
    churn_s: float = 120.0
    churn_gap_s: tuple[float, float] = (5.0, 10.0)
    min_members: int = 2


FULL = Scale()
SHORT = Scale(
    member_kills=4,
    kill_gap_s=(0.5, 2.0),
    broker_kills=1,
    broker_gap_s=(1.0, 3.0),
    broker_down_s=(1.0, 2.0),
    redo_gone_s=4.0,
    fault_run_s=3.0,
    slow_s=4.0,
    churn_s=15.0,
    churn_gap_s=(2.0, 4.0),
)

Injector = Callable[[Cluster, Scale, random.Random, float], None]
"""``(cluster, scale, rng, redo_timeout_s)``: inject one kind of fault, return when done."""


def kill_members(cluster: Cluster, scale: Scale, rng: random.Random, _timeout: float) -> None:
    """a. SIGKILL a random running member at random moments, restarting it at once."""
    for _ in range(scale.member_kills):
        cluster.pause(rng.uniform(*scale.kill_gap_s))
        with cluster.lock:
            running = cluster.running()
            if not running:
                continue
            member = rng.choice(running)
            cluster.log.instant("member SIGKILL", member.name)
            member.kill()
            member.start()


def kill_broker(cluster: Cluster, scale: Scale, rng: random.Random, _timeout: float) -> None:
    """b. SIGKILL the broker and restart it on the same log dir and ports."""
    for _ in range(scale.broker_kills):
        cluster.pause(rng.uniform(*scale.broker_gap_s))
        with cluster.log.lasting("broker SIGKILL", "broker"):
            cluster.kafka.kill()
            try:
                cluster.pause(rng.uniform(*scale.broker_down_s))
            finally:
                cluster.kafka.restart()


def break_redo(cluster: Cluster, scale: Scale, rng: random.Random, redo_timeout: float) -> None:
    """c. Redo gone (connection refused), then runs of 503, a 429 storm with Retry-After, and
    answers slower than the consumer's timeout."""
    redo = cluster.redo
    with cluster.log.lasting("Redo gone", "redo"):
        redo.go_away()
        try:
            cluster.pause(scale.redo_gone_s)
        finally:
            redo.come_back()
    runs = (
        ("Redo 503", "fail_next", {"status": 503}),
        ("Redo 503", "fail_next", {"status": 503}),
        ("Redo 429", "rate_limit_next", {"retry_after": 1}),
    )
    for kind, key, value in runs:
        cluster.pause(rng.uniform(0.5, 2.0))
        with cluster.log.lasting(kind, "redo"):
            redo.control.set_faults(**{key: {**value, "count": 10**9}})
            try:
                cluster.pause(scale.fault_run_s)
            finally:
                redo.control.set_faults(**{key: {**value, "count": 0}})
    with cluster.log.lasting("Redo slower than timeout", "redo"):
        redo.control.set_faults(late_answer_ms=redo_timeout * 1500)
        try:
            cluster.pause(scale.slow_s)
        finally:
            redo.control.set_faults(late_answer_ms=0)


def churn_members(cluster: Cluster, scale: Scale, rng: random.Random, _timeout: float) -> None:
    """d. A member joins or leaves (SIGTERM) every few seconds, between ``min_members`` and all
    of them running."""
    deadline = time.monotonic() + scale.churn_s
    while time.monotonic() < deadline:
        cluster.pause(rng.uniform(*scale.churn_gap_s))
        with cluster.lock:
            running = cluster.running()
            idle = [m for m in cluster.members if not m.running]
            leave = not idle or (len(running) > scale.min_members and rng.random() < 0.5)
            # Each lasts until its rebalance is over: a call of the leaver's shutdown, or of the
            # revoke a join causes, may be sent again by the partition's next owner.
            if leave:
                member = rng.choice(running)
                with cluster.log.lasting("member leave", member.name):
                    member.stop()
            else:
                member = rng.choice(idle)
                with cluster.log.lasting("member join", member.name):
                    member.start()
                    member.process.wait_assigned()


SCENARIOS: dict[str, tuple[str, tuple[Injector, ...]]] = {
    "a": ("member SIGKILLs", (kill_members,)),
    "b": ("broker SIGKILLs", (kill_broker,)),
    "c": ("Redo gone, 503, 429, slow", (break_redo,)),
    "d": ("rebalance churn", (churn_members,)),
    "e": ("all interleaved", (kill_members, kill_broker, break_redo, churn_members)),
}
