"""A minimal Confluent Schema Registry client: writer schemas by ID, fetched once and cached.

Failures split by whose fault they are, because the pipeline treats them oppositely:

- the registry answers that the ID does not exist (404 with Confluent's error code 40403), or the
  schema behind the ID is not a usable Avro schema: the *record* is bad → ``SchemaRegistryError``
  (a ``DecodeError``: dead-lettered);
- anything else (connection refused, timeout, 5xx, 429, 401/403, a 404 without that error code,
  which is what a wrong URL path gives): the *registry* is unreachable or misconfigured, and the
  record may be perfectly good → ``SchemaRegistryUnavailable``, which the pipeline retries and
  never dead-letters.

Credentials may be given in the URL (``https://user:pass@host``); they are sent as HTTP basic auth
and kept out of every error message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from consumer.avro_files import parse_schema_document
from consumer.errors import SchemaRegistryError, TrackingConsumerError

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_SCHEMA_NOT_FOUND = 40403


class SchemaRegistryUnavailable(TrackingConsumerError):
    """The registry could not answer (outage, timeout, auth, misconfiguration).

    Deliberately not a ``DecodeError``: the pipeline retries it and never dead-letters, because
    the record itself may be fine.
    """


@dataclass(frozen=True, slots=True)
class SchemaReference:
    """Which writer schema a record names."""

    schema_id: int

    def __str__(self) -> str:
        return f"schema id {self.schema_id}"


class SchemaPending(TrackingConsumerError):
    """The record's writer schema is not cached yet: fetch it (``fetch_schema``), then decode
    again. Not a ``DecodeError``: the record may be perfectly good."""

    def __init__(self, reference: SchemaReference) -> None:
        super().__init__(f"{reference} is not cached yet")
        self.reference = reference


class SchemaRegistryClient:
    """Fetches Avro writer schemas by ID. Thread-safe; one HTTP request per ID at most."""

    def __init__(self, url: str, timeout: float = 5.0, http: httpx.Client | None = None) -> None:
        """``ValueError`` (never echoing the URL, which may hold a password) if ``url`` is not
        an http(s) URL with a host: better to refuse to start than to retry a typo forever."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        self._auth = (
            httpx.BasicAuth(parsed.username, parsed.password)
            if parsed.username or parsed.password
            else None
        )
        self._base = str(parsed.copy_with(username=None, password=None)).rstrip("/")
        self._timeout = timeout
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client()
        self._cache: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The registry's base URL without credentials (safe to log)."""
        return self._base

    def get_schema(self, schema_id: int) -> dict[str, Any]:
        """The parsed writer schema for ``schema_id``; cached forever (IDs are immutable)."""
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(schema_id)
            if cached is None:
                cached = self._fetch(schema_id)
                self._cache[schema_id] = cached
            return cached

    def register(self, subject: str, schema: Mapping[str, Any]) -> int:
        """Register ``schema`` (as written, not fastavro-parsed) under ``subject``; its ID.

        For tests and the demo: the consumer itself only reads.
        """
        response = self._request(
            "POST",
            f"/subjects/{quote(subject, safe='')}/versions",
            content=json.dumps({"schema": json.dumps(schema)}),
        )
        if response.status_code != 200:
            raise SchemaRegistryUnavailable(
                f"schema registry {self._base}: registering under subject {subject!r} "
                f"failed with HTTP {response.status_code}: {response.text[:200]}"
            )
        return int(_json_body(response, self._base)["id"])

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SchemaRegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _fetch(self, schema_id: int) -> dict[str, Any]:
        response = self._request("GET", f"/schemas/ids/{schema_id}")
        if response.status_code == 404 and _error_code(response) == _SCHEMA_NOT_FOUND:
            raise SchemaRegistryError(f"unknown schema id {schema_id}")
        if response.status_code != 200:
            raise SchemaRegistryUnavailable(
                f"schema registry {self._base}: GET schema id {schema_id} "
                f"answered HTTP {response.status_code}: {response.text[:200]}"
            )
        body = _json_body(response, self._base)
        schema_type = body.get("schemaType", "AVRO")
        if schema_type != "AVRO":
            raise SchemaRegistryError(f"schema id {schema_id} is a {schema_type} schema, not Avro")
        try:
            document = json.loads(body["schema"])
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise SchemaRegistryError(f"schema id {schema_id}: no valid schema JSON") from exc
        if not isinstance(document, dict):
            raise SchemaRegistryError(f"schema id {schema_id} is not an Avro record schema")
        try:
            return parse_schema_document(document, f"schema id {schema_id}")
        except ValueError as exc:
            raise SchemaRegistryError(str(exc)) from exc

    def _request(self, method: str, path: str, content: str | None = None) -> httpx.Response:
        try:
            return self._http.request(
                method,
                self._base + path,
                content=content,
                headers={"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE},
                auth=self._auth,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise SchemaRegistryUnavailable(
                f"schema registry {self._base}: {method} {path} failed: {exc!r}"
            ) from exc


def _error_code(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


def _json_body(response: httpx.Response, base: str) -> dict[str, Any]:
    """A 200 that is not a JSON object is a proxy or a wrong URL talking, not the registry."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SchemaRegistryUnavailable(
            f"schema registry {base}: {response.request.url.path} answered a non-JSON body: "
            f"{response.text[:200]}"
        )
    return body
