"""The exception hierarchy: each class says what the pipeline does with the failure."""

from __future__ import annotations


class TrackingConsumerError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(TrackingConsumerError):
    """Invalid configuration: the process refuses to start (exit code 2, one line)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class DecodeError(TrackingConsumerError):
    """A record's bytes cannot become a ``TrackingEvent``: it is dead-lettered, then done."""


class SchemaRegistryError(DecodeError):
    """The registry does not know the schema ID (or cannot be asked): the record cannot decode."""


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
