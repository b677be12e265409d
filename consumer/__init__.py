"""tracking-consumer: carrier tracking scans from Kafka to Redo's Update Fulfillment Status API."""

__version__ = "0.1.0"
