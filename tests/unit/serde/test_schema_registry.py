"""SchemaRegistry against a real HTTP registry: lookups, single flight, the negative cache, and
whose fault a failure is."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from consumer.errors import DecodeError, SchemaRegistryError, SchemaRegistryUnavailable
from consumer.kafka.schema_registry import SchemaReference, SchemaRegistry
from consumer.serde.schemas import load_schema, load_schema_json
from tests.support.schema_registry_server import RegistryState, hanging_registry, running_registry

TRACKING_EVENT = json.dumps(load_schema_json("tracking_event"))
GUID = str(uuid.UUID("6f1c0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"))
BY_ID = SchemaReference(schema_id=7)
BY_GUID = SchemaReference(guid=GUID)


@pytest.fixture
def registry() -> Iterator[tuple[str, RegistryState]]:
    with running_registry() as served:
        yield served


@asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[SchemaRegistry]:
    client = SchemaRegistry(url, **options)
    try:
        yield client
    finally:
        await client.aclose()


async def fetch(url: str, reference: SchemaReference, **options: Any) -> dict[str, Any]:
    async with opened(url, **options) as client:
        return await client.fetch(reference)


def schema_gets(state: RegistryState) -> list[str]:
    return [path for method, path, _ in state.get_requests() if method == "GET"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reference_names_an_id_or_a_guid() -> None:
    assert str(BY_ID) == "schema id 7"
    assert str(BY_GUID) == f"schema guid {GUID}"
    assert SchemaReference(schema_id=7) == BY_ID and hash(SchemaReference(schema_id=7)) == hash(
        BY_ID
    )
    for wrong in ({}, {"schema_id": 1, "guid": GUID}):
        with pytest.raises(ValueError, match="exactly one"):
            SchemaReference(**wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("reference", [BY_ID, BY_GUID], ids=str)
def test_schema_comes_back_parsed(
    registry: tuple[str, RegistryState], reference: SchemaReference
) -> None:
    url, state = registry
    state.put(7, TRACKING_EVENT, guid=GUID)

    assert asyncio.run(fetch(url, reference)) == load_schema("tracking_event")
    expected = "/schemas/ids/7" if reference.guid is None else f"/schemas/guids/{GUID}"
    assert schema_gets(state) == [expected]


def test_concurrent_fetches_share_one_request_and_one_waiter_may_give_up(
    registry: tuple[str, RegistryState],
) -> None:
    url, state = registry
    state.put(3, TRACKING_EVENT)
    state.hold = threading.Event()
    reference = SchemaReference(schema_id=3)

    async def scenario() -> list[dict[str, Any]]:
        async with opened(url) as client:
            waiters = [asyncio.create_task(client.fetch(reference)) for _ in range(8)]
            await asyncio.to_thread(state.wait_for_requests, 1)
            waiters[0].cancel()  # e.g. its partition was revoked
            assert state.hold is not None
            state.hold.set()
            results = await asyncio.gather(*waiters[1:])
            assert waiters[0].cancelled()
            return results

    results = asyncio.run(scenario())

    assert len(results) == 7 and all(r == load_schema("tracking_event") for r in results)
    assert schema_gets(state) == ["/schemas/ids/3"]


@pytest.mark.parametrize("reference", [SchemaReference(schema_id=99), BY_GUID], ids=str)
def test_unknown_schema_is_a_decode_error_remembered_until_the_ttl_passes(
    registry: tuple[str, RegistryState], reference: SchemaReference
) -> None:
    url, state = registry
    clock = FakeClock()

    async def scenario() -> dict[str, Any]:
        async with opened(url, negative_ttl=30.0, clock=clock) as client:
            with pytest.raises(SchemaRegistryError, match=f"unknown {reference}") as caught:
                await client.fetch(reference)
            assert isinstance(caught.value, DecodeError)
            state.put(99, TRACKING_EVENT, guid=GUID)  # registered just after
            clock.now += 29.9
            with pytest.raises(SchemaRegistryError, match=f"unknown {reference}"):
                client.raise_if_known_bad(reference)
            with pytest.raises(SchemaRegistryError, match=f"unknown {reference}"):
                await client.fetch(reference)
            assert len(schema_gets(state)) == 1, "asked again within the TTL"
            clock.now += 0.2
            client.raise_if_known_bad(reference)
            return await client.fetch(reference)

    assert asyncio.run(scenario()) == load_schema("tracking_event")
    assert len(schema_gets(state)) == 2


def test_negative_cache_forgets_expired_entries(registry: tuple[str, RegistryState]) -> None:
    url = registry[0]
    clock = FakeClock()

    async def scenario() -> None:
        async with opened(url, negative_ttl=30.0, clock=clock) as client:
            for schema_id in (1, 2):
                with pytest.raises(SchemaRegistryError):
                    await client.fetch(SchemaReference(schema_id=schema_id))
                clock.now += 20
            client.raise_if_known_bad(SchemaReference(schema_id=1))  # expired
            with pytest.raises(SchemaRegistryError):
                client.raise_if_known_bad(SchemaReference(schema_id=2))
            # Expired entries are dropped, not just ignored: a producer spraying random IDs
            # must not grow the cache without bound.
            assert client._missing.keys() == {SchemaReference(schema_id=2)}

    asyncio.run(scenario())


@pytest.mark.parametrize("status", [500, 503, 429, 408, 401, 403])
def test_registry_failure_is_retryable_and_asked_once(
    registry: tuple[str, RegistryState], status: int
) -> None:
    url, state = registry
    state.override = (status, b'{"error_code": 50001, "message": "busy"}')

    with pytest.raises(SchemaRegistryUnavailable, match=f"HTTP {status}: busy") as caught:
        asyncio.run(fetch(url, BY_ID))

    assert not isinstance(caught.value, DecodeError)
    assert len(state.get_requests()) == 1, "the library retried: our pipeline owns the backoff"


def test_registry_failure_is_not_negatively_cached(registry: tuple[str, RegistryState]) -> None:
    url, state = registry
    state.put(7, TRACKING_EVENT)
    state.override = (503, b"")

    async def scenario() -> dict[str, Any]:
        async with opened(url) as client:
            with pytest.raises(SchemaRegistryUnavailable, match="HTTP 503"):
                await client.fetch(BY_ID)
            state.override = None
            client.raise_if_known_bad(BY_ID)
            return await client.fetch(BY_ID)

    assert asyncio.run(scenario()) == load_schema("tracking_event")


def test_registry_down_is_retryable() -> None:
    with running_registry() as (url, _):
        pass  # stopped: nothing listens on its port any more

    with pytest.raises(SchemaRegistryUnavailable, match="failed: ConnectError") as caught:
        asyncio.run(fetch(url, BY_ID, timeout=2.0))

    assert not isinstance(caught.value, DecodeError)


def test_hanging_registry_is_retryable_within_the_timeout_and_never_blocks_the_loop() -> None:
    async def scenario(url: str) -> float:
        """The longest the loop went without running a 10 ms ticker while the fetch waited."""
        longest = 0.0

        async def tick() -> None:
            nonlocal longest
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                longest = max(longest, time.monotonic() - before)

        ticker = asyncio.create_task(tick())
        try:
            with pytest.raises(SchemaRegistryUnavailable, match="schema id 7"):
                await fetch(url, BY_ID, timeout=0.5)
        finally:
            ticker.cancel()
        return longest

    with hanging_registry() as url:
        started = time.monotonic()
        longest_stall = asyncio.run(scenario(url))
        elapsed = time.monotonic() - started

    assert 0.4 < elapsed < 3.0
    assert longest_stall < 0.25, f"the loop stalled {longest_stall:.2f}s"


def test_wrong_url_path_is_not_mistaken_for_an_unknown_id(
    registry: tuple[str, RegistryState],
) -> None:
    with pytest.raises(SchemaRegistryUnavailable, match="HTTP 404"):
        asyncio.run(fetch(registry[0] + "/not-the-registry", BY_ID))


@pytest.mark.parametrize("body", [b"<html>proxy login</html>", b"[1, 2]", b'"a string"'])
def test_success_that_is_not_a_registry_answer_is_retryable(
    registry: tuple[str, RegistryState], body: bytes
) -> None:
    registry[1].override = (200, body)

    with pytest.raises(SchemaRegistryUnavailable, match="non-JSON"):
        asyncio.run(fetch(registry[0], BY_ID))


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"schema": 'syntax = "proto3";', "schemaType": "PROTOBUF"}, "PROTOBUF schema, not Avro"),
        ({"schema": "{not json"}, "no valid schema JSON"),
        ({}, "no valid schema JSON"),
        ({"schema": '"string"'}, "not an Avro record schema"),
        ({"schema": '{"type": "enum", "name": "E", "symbols": ["A"]}'}, "not an Avro record"),
        ({"schema": '{"type": "record", "name": "R", "fields": [{"name": "a"}]}'}, "not a valid"),
        (
            {"schema": TRACKING_EVENT, "references": [{"name": "x", "subject": "x", "version": 1}]},
            "uses schema references",
        ),
    ],
)
def test_unusable_schema_is_a_decode_error(
    registry: tuple[str, RegistryState], entry: dict[str, Any], problem: str
) -> None:
    url, state = registry
    state.schemas[7] = entry

    with pytest.raises(SchemaRegistryError, match=problem):
        asyncio.run(fetch(url, BY_ID))


def test_explicit_avro_schema_type_is_accepted(registry: tuple[str, RegistryState]) -> None:
    url, state = registry
    state.put(7, TRACKING_EVENT, "AVRO")

    assert asyncio.run(fetch(url, BY_ID)) == load_schema("tracking_event")


def test_credentials_in_the_url_become_basic_auth_and_stay_secret() -> None:
    state = RegistryState(credentials=("svc@corp", "s3cr:et"))
    state.put(7, TRACKING_EVENT)

    async def scenario(url: str) -> SchemaRegistryUnavailable:
        authed_url = url.replace("http://", "http://svc%40corp:s3cr%3Aet@")
        async with opened(authed_url) as client:
            assert await client.fetch(BY_ID) == load_schema("tracking_event")
            state.override = (503, b"")
            with pytest.raises(SchemaRegistryUnavailable) as caught:
                await client.fetch(SchemaReference(schema_id=8))
        state.override = None
        async with opened(url) as anonymous:
            with pytest.raises(SchemaRegistryUnavailable, match="HTTP 401"):
                await anonymous.fetch(BY_ID)
        return caught.value

    with running_registry(state) as (url, _):
        error = asyncio.run(scenario(url))

    assert str(error).startswith(f"schema registry {url}: GET schema id 8 answered HTTP 503")
    rendered = "".join(traceback.format_exception(error))  # with its chained causes
    assert "s3cr" not in rendered and "s3cr" not in repr(error)
    assert [auth is not None for _, _, auth in state.get_requests()] == [True, True, False]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost:8081", "http:// or https:// URL with a host"),
        ("http://", "http:// or https:// URL with a host"),
        ("ftp://registry", "http:// or https:// URL with a host"),
        ("http://user:hunter2@:8081", "http:// or https:// URL with a host"),
        ("http://h:x", "http:// or https:// URL with a host"),
        ("http://user:hunter2@a/x,http://b", "single URL"),
        ("http://us%3Aer:hunter2@registry", "must not contain ':'"),
    ],
)
def test_unusable_url_is_refused_without_echoing_it(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        SchemaRegistry(url)

    assert "hunter2" not in str(caught.value)
