"""The exception hierarchy: each class says what the pipeline does with the failure.

Grouped by cause: configuration, bad records, Redo's answers, Kafka, the schema registry.
No third-party import here (``ProduceError``'s flags are computed in ``consumer.kafka``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consumer.kafka.schema_registry import SchemaReference


class TrackingConsumerError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(TrackingConsumerError):
    """Invalid configuration: the process refuses to start (exit code 2, one line)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


# --- Bad records ------------------------------------------------------------------------------


class DecodeError(TrackingConsumerError):
    """A record's bytes cannot become a ``TrackingEvent``: it is dead-lettered, then done."""


class SchemaRegistryError(DecodeError):
    """The registry does not know the schema ID (or cannot be asked): the record cannot decode."""


# --- Redo's answers ----------------------------------------------------------------------------


class RedoError(TrackingConsumerError):
    """A Redo call did not get a 2xx. Subclasses say whether to retry, dead-letter or block."""

    def __init__(self, message: str, *, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class RedoRetryableError(RedoError):
    """429, 5xx, timeout or connection error: retry with backoff, without limit by default."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after = retry_after


class RedoNotFoundError(RedoError):
    """404: the fulfillment may not exist yet; retried for a bounded window, then dead-lettered."""


class RedoRejectedError(RedoError):
    """400 (or another 4xx that retrying cannot fix): dead-lettered with request and response."""


class RedoAuthError(RedoError):
    """401/403: stop calling, fail readiness, retry slowly after re-reading the secret."""


# --- Kafka: writes, reads, restores -----------------------------------------------------------


class ProduceError(TrackingConsumerError):
    """The broker did not acknowledge a write (after librdkafka's own retries).

    The record that caused the write stays undone: a ``permanent`` refusal holds the write
    (logged, ``tracking_kafka_writes_held``, ``/readyz`` false) until an operator fixes it; a
    ``too_large`` dead letter is written again truncated; anything else is retried with backoff.
    ``permanent`` and ``too_large`` are computed from the librdkafka error code in
    ``consumer.kafka.producer`` and stored here as plain flags.
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        code: int | None = None,
        permanent: bool = False,
        too_large: bool = False,
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.code = code
        self.too_large = too_large
        """The record is bigger than the topic (or librdkafka) accepts: resending it won't do."""
        self.permanent = permanent or too_large
        """Retrying cannot fix this without an operator (missing topic, no authorisation)."""


class RestoreCancelled(TrackingConsumerError):
    """The partition was revoked while its state was being restored: the restore thread stops
    quietly; the new owner restores it."""


class StateDecodeError(TrackingConsumerError, ValueError):
    """A changelog state record this version cannot read: set aside (quarantined), counted in
    ``tracking_states_quarantined_total``, logged; the shipment starts afresh at its next scan."""


# --- Schema registry: the record may be fine, the schema is not at hand -----------------------


class SchemaPending(TrackingConsumerError):
    """The record's writer schema is not cached yet: fetch it (``fetch_schema``), then decode again.

    Not a ``DecodeError``: the record is probably fine, decoding just never waits for I/O.
    """

    def __init__(self, reference: SchemaReference) -> None:
        super().__init__(f"{reference} is not cached yet")
        self.reference = reference


class SchemaRegistryUnavailable(TrackingConsumerError):
    """The registry could not answer (outage, timeout, auth, misconfiguration).

    Deliberately not a ``DecodeError``: the pipeline retries it and never dead-letters, because
    the record itself may be fine.
    """
