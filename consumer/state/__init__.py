"""Durable per-shipment state: the changelog codec, the per-partition store, the changelog I/O."""
