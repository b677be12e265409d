"""Bytes to domain objects: the Avro schemas and the event decoders."""
