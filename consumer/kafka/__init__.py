"""Everything that talks to Kafka: every confluent_kafka import and librdkafka setting."""
