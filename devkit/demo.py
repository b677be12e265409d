"""``make demo``: the whole path on this machine, then a summary.

Starts a real Kafka broker (or uses KAFKA_BOOTSTRAP_SERVERS) and the Redo sandbox, produces a
sample stream of tracking scans (plus a few undecodable records), runs the consumer as a real
process until every offset is committed, stops it with SIGTERM, prints what Redo received, and
leaves nothing running.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from devkit.broker import create_topic, kafka_cluster
from devkit.consumer_process import ConsumerProcess
from devkit.generator import tracking_stream
from devkit.kafka_tools import (
    fully_committed,
    produce,
    produce_events,
    read_topic,
    wait_until,
)
from devkit.sandbox import SandboxControl, SandboxServer

SHIPMENTS = 25
SCANS_PER_SHIPMENT = 6
UNDECODABLE = 3


def main() -> int:
    token = f"demo-{uuid.uuid4()}"
    topic = f"demo-scans-{uuid.uuid4().hex[:8]}"
    with (
        kafka_cluster() as bootstrap,
        SandboxServer(token=token) as sandbox,
        tempfile.TemporaryDirectory() as scratch,
    ):
        print(f"broker  {bootstrap}\nsandbox {sandbox.url}\ntopic   {topic} (3 partitions)")
        create_topic(bootstrap, topic, 3)
        events = tracking_stream(SHIPMENTS, SCANS_PER_SHIPMENT, unknown_every=20)
        produce_events(bootstrap, topic, events)
        produce(bootstrap, topic, [(b"ful-00000", b"\x00garbage")] * UNDECODABLE)
        print(f"produced {len(events)} scans and {UNDECODABLE} undecodable records")

        secret = Path(scratch) / "redo-secret"
        secret.write_text(token)
        group = f"demo-{topic}"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": group,
            "REDO_API_URL": sandbox.url,
            "REDO_API_SECRET_FILE": str(secret),
            "COMMIT_INTERVAL_SECONDS": "0.5",
        }
        with ConsumerProcess(env) as consumer:
            consumer.wait_ready()
            wait_until(
                lambda: fully_committed(bootstrap, group, topic),
                120,
                f"every offset committed (consumer log:\n{consumer.tail()})",
                interval=0.5,
            )
            exit_code = consumer.stop()

        control = SandboxControl(sandbox.url)
        calls = control.calls()
        dead = read_topic(bootstrap, f"{topic}.dlq", expected=UNDECODABLE)
        _print_summary(calls, len(dead), exit_code)
        return 0 if exit_code == 0 else 1


def _print_summary(calls: list[dict[str, object]], dead_letters: int, exit_code: int) -> None:
    by_status = Counter(str(call["body"]["status"]) for call in calls)  # type: ignore[index]
    answered = Counter(str(call["status_code"]) for call in calls)
    fulfillments = {call["fulfillment_id"] for call in calls}
    print(f"\nRedo received {len(calls)} calls for {len(fulfillments)} fulfillments:")
    for status, count in sorted(by_status.items()):
        print(f"  {status:<22} {count:>5}")
    print(f"answers: {dict(sorted(answered.items()))}")
    print(f"dead letters: {dead_letters}")
    print("offsets: every partition committed to its end")
    print(f"consumer exit code after SIGTERM: {exit_code}")


if __name__ == "__main__":
    sys.exit(main())
