"""The Redo HTTP edge: request payloads, the bearer secrets and the client that sends calls."""

from consumer.redo.client import RedoClient, RedoResponse, parse_retry_after
from consumer.redo.payload import request_body, request_path
from consumer.redo.secrets import SecretProvider

__all__ = [
    "RedoClient",
    "RedoResponse",
    "SecretProvider",
    "parse_retry_after",
    "request_body",
    "request_path",
]
