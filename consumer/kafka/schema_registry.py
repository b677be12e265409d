"""Writer schemas from a Confluent Schema Registry: fetched off the hot path, parsed once.

The HTTP client is confluent-kafka's own ``AsyncSchemaRegistryClient`` (httpx underneath, no
blocking call on the loop); this module adds the project's policy around it:

- one attempt per ``fetch`` (the pipeline owns the backoff loop, so the library's retries are off)
  within ``timeout`` seconds in all, however the registry stalls;
- concurrent fetches of one schema share one request;
- failures split by whose fault they are, because the pipeline treats them oppositely. The
  registry answers that the schema does not exist (404 with Confluent's error code 40403), or the
  schema is not a usable Avro record schema: the *record* is bad → ``SchemaRegistryError`` (a
  ``DecodeError``: dead-lettered), and remembered for ``NEGATIVE_CACHE_SECONDS``. Anything else
  (connection refused, timeout, 5xx, 429, 401/403, a 404 without that error code, which is what a
  wrong URL path gives, a body that is not the registry's JSON): the *registry* is unreachable or
  misconfigured and the record may be fine → ``SchemaRegistryUnavailable``, retried, never
  dead-lettered.

Credentials may be given in the URL (``https://user:pass@host``); they are sent as HTTP basic auth
and the URL the client (and every error message) sees has none.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

with warnings.catch_warnings():
    # authlib, which the registry client imports, turns its own deprecation warning on for
    # good ("always") and prints it to stderr at import: a line of noise on every start, and
    # before a one-line configuration error. Its filter is set first, then overridden here;
    # leaving the block restores the process's filters.
    import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
    from confluent_kafka.schema_registry import SchemaRegistryError as RegistryAnswer

from consumer.errors import SchemaRegistryError, SchemaRegistryUnavailable
from consumer.serde.schemas import parse_schema_document

DEFAULT_TIMEOUT_SECONDS = 5.0
# How long a schema the registry said does not exist stays "does not exist" without asking again.
# Long enough that a burst of records naming it (a misconfigured producer) costs one lookup, not
# one per record; short enough that a schema registered after its first records (a producer that
# writes before registering, replication lag between registry nodes) is found within a minute.
NEGATIVE_CACHE_SECONDS = 30.0
_SCHEMA_NOT_FOUND = 40403


@dataclass(frozen=True, slots=True)
class SchemaReference:
    """Which writer schema a record names: a registry ID or a GUID (canonical lowercase form)."""

    schema_id: int | None = None
    guid: str | None = None

    def __post_init__(self) -> None:
        if (self.schema_id is None) == (self.guid is None):
            raise ValueError("a SchemaReference names a schema id or a guid, exactly one")

    def __str__(self) -> str:
        return f"schema id {self.schema_id}" if self.guid is None else f"schema guid {self.guid}"


class SchemaRegistry:
    """Parsed Avro writer schemas by reference, one request per schema at a time.

    Keeps no schemas itself (the decoder does, keyed for its hot path), only what the registry
    said is missing. Use it on one event loop; ``aclose`` it when done.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        negative_ttl: float = NEGATIVE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ValueError`` (never echoing the URL, which may hold a password) if ``url`` is not
        an http(s) URL with a host: better to refuse to start than to retry a typo forever."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        if "," in url:
            # The library would split it into several registries; we promise one.
            raise ValueError("must be a single URL (no commas)")
        self._base = str(parsed.copy_with(username=None, password=None)).rstrip("/")
        conf: dict[str, Any] = {"url": self._base, "timeout": timeout, "max.retries": 0}
        if parsed.username or parsed.password:
            if ":" in parsed.username:
                raise ValueError("the user name in the URL must not contain ':' (basic auth)")
            conf["basic.auth.user.info"] = f"{parsed.username}:{parsed.password}"
        self._client = AsyncSchemaRegistryClient(conf)
        self._timeout = timeout
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._flights: dict[SchemaReference, asyncio.Task[dict[str, Any]]] = {}
        # reference -> (until when, why); insertion order is expiry order (one TTL, one clock).
        self._missing: dict[SchemaReference, tuple[float, str]] = {}

    def raise_if_known_bad(self, reference: SchemaReference) -> None:
        """``SchemaRegistryError`` if the registry recently said ``reference`` is unusable."""
        now = self._clock()
        while self._missing:
            oldest = next(iter(self._missing))
            if self._missing[oldest][0] > now:
                break
            del self._missing[oldest]
        known = self._missing.get(reference)
        if known is not None:
            raise SchemaRegistryError(known[1])

    async def fetch(self, reference: SchemaReference) -> dict[str, Any]:
        """The parsed writer schema, in one attempt; concurrent callers share the request.

        Raises ``SchemaRegistryUnavailable`` (retry later) or ``SchemaRegistryError`` (the
        record is bad; also without asking while the answer is negatively cached).
        """
        self.raise_if_known_bad(reference)
        flight = self._flights.get(reference)
        if flight is None:
            flight = asyncio.create_task(self._fetch(reference))
            self._flights[reference] = flight
        # One waiter giving up (its partition was revoked) must not cancel the others' request.
        return await asyncio.shield(flight)

    async def aclose(self) -> None:
        """Close the HTTP connections (the library's client has no other close method)."""
        await self._client.__aexit__(None, None, None)

    async def _fetch(self, reference: SchemaReference) -> dict[str, Any]:
        """The flight itself: lands in the negative cache if the record is bad."""
        try:
            return _parsed(await self._ask(reference), reference)
        except SchemaRegistryError as exc:
            self._missing.pop(reference, None)  # re-inserted at the end: keeps expiry order
            self._missing[reference] = (self._clock() + self._negative_ttl, str(exc))
            raise
        finally:
            del self._flights[reference]

    async def _ask(self, reference: SchemaReference) -> Any:
        """The library's ``Schema`` for ``reference``, its failures classified."""
        where = f"schema registry {self._base}: GET {reference}"
        try:
            async with asyncio.timeout(self._timeout):
                if reference.guid is None:
                    return await self._client.get_schema(reference.schema_id)
                return await self._client.get_schema_by_guid(reference.guid)
        except RegistryAnswer as exc:
            if exc.http_status_code == 404 and exc.error_code == _SCHEMA_NOT_FOUND:
                raise SchemaRegistryError(f"unknown {reference}") from exc
            raise SchemaRegistryUnavailable(
                f"{where} answered HTTP {exc.http_status_code}: {str(exc.error_message)[:200]}"
            ) from exc
        except TimeoutError as exc:
            raise SchemaRegistryUnavailable(f"{where}: no answer within {self._timeout}s") from exc
        except httpx.HTTPError as exc:
            raise SchemaRegistryUnavailable(f"{where} failed: {exc!r}") from exc
        except (ValueError, TypeError, AttributeError) as exc:
            # A success status with a body that is not a JSON object: a proxy or a wrong URL.
            raise SchemaRegistryUnavailable(f"{where} answered a non-JSON body: {exc!r}") from exc


def _parsed(schema: Any, reference: SchemaReference) -> dict[str, Any]:
    """The fastavro-parsed schema; ``SchemaRegistryError`` if it is not an Avro record schema."""
    if schema.schema_type != "AVRO":
        raise SchemaRegistryError(f"{reference} is a {schema.schema_type} schema, not Avro")
    if schema.references:
        raise SchemaRegistryError(f"{reference} uses schema references, which are not resolved")
    try:
        document = json.loads(schema.schema_str)
    except (TypeError, json.JSONDecodeError) as exc:
        raise SchemaRegistryError(f"{reference}: no valid schema JSON") from exc
    if not isinstance(document, dict) or document.get("type") != "record":
        raise SchemaRegistryError(f"{reference} is not an Avro record schema")
    try:
        return parse_schema_document(document, str(reference))
    except ValueError as exc:
        raise SchemaRegistryError(str(exc)) from exc
