"""Everything that talks to Kafka: every confluent_kafka import and librdkafka setting.

The Kafka thread's parts, each with one job: ``source`` (the run loop composing them),
``fetch`` (fetching and the hand-over), ``handoff`` (every call onto the asyncio loop),
``assignment`` (rebalance callbacks), ``restore`` (restore threads, then positioning),
``caught_up``, ``backpressure``, ``commits``, ``offsets`` (done tracking). Around them:
``config`` (every librdkafka dict), ``topics`` (start-up topic set-up), ``reader`` (a partition
read to its end), ``producer``, ``dead_letters``, ``schema_registry``, ``records``.
"""
