"""Contender (b): the same job as an idiomatic Quix Streams app.

An ``Application``, a topic with Quix's own ``AvroDeserializer``, ``app.dataframe(topic)`` and
one function that posts the call with a synchronous httpx client; Quix handles polling,
checkpointing and commits. Quix processes one record at a time per process, so this is as
sequential as the naive loop, minus the commit per record. The one setting changed from the
defaults is ``commit_interval=1.0`` (default 5 s), to match tracking-consumer's commit interval
so that "until every offset is committed" measures both alike.

Run as ``python -m bench.quix_app --bootstrap B --topic T --group G --url U --secret-file F``;
SIGTERM stops it (Quix's own handler).
"""

from __future__ import annotations

from typing import Any

import httpx
from quixstreams import Application
from quixstreams.models.serializers.avro import AvroDeserializer

from bench.calls import parse_kafka_contender, redo_request
from consumer.serde.fields import record_to_event
from consumer.serde.schemas import tracking_event_schema


def main(argv: list[str] | None = None) -> None:
    args = parse_kafka_contender("python -m bench.quix_app", argv)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        loglevel="WARNING",
    )
    topic = app.topic(
        args.topic,
        key_deserializer="str",
        value_deserializer=AvroDeserializer(schema=tracking_event_schema()),
    )
    http = httpx.Client(base_url=args.target.url, headers=args.target.headers)

    def post_status(record: dict[str, Any]) -> None:
        request = redo_request(record_to_event(record))
        if request is not None:
            path, body = request
            http.post(path, json=body).raise_for_status()

    sdf = app.dataframe(topic)
    sdf.update(post_status)
    try:
        app.run()
    finally:
        http.close()


if __name__ == "__main__":
    main()
