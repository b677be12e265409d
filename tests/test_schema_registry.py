"""SchemaRegistryClient against a real HTTP registry: lookups, caching, whose fault a failure is."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from schema_registry_server import RegistryState, running_registry

from consumer.avro_files import load_schema, load_schema_json
from consumer.errors import DecodeError, SchemaRegistryError
from consumer.schema_registry import SchemaRegistryClient, SchemaRegistryUnavailable


@pytest.fixture
def registry() -> Iterator[tuple[str, RegistryState]]:
    with running_registry() as served:
        yield served


@pytest.fixture
def client(registry: tuple[str, RegistryState]) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient(registry[0]) as registry_client:
        yield registry_client


def schema_gets(state: RegistryState) -> list[str]:
    return [path for method, path, _ in state.get_requests() if method == "GET"]


def test_registered_schema_comes_back_parsed(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    schema_id = client.register("tracking-events-value", load_schema_json("tracking_event"))

    assert client.get_schema(schema_id) == load_schema("tracking_event")
    posts = [path for method, path, _ in registry[1].get_requests() if method == "POST"]
    assert posts == ["/subjects/tracking-events-value/versions"]


def test_subject_is_percent_encoded(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    client.register("a/b c", load_schema_json("tracking_event"))

    assert registry[1].get_requests()[0][1] == "/subjects/a%2Fb%20c/versions"


def test_schema_is_fetched_once_per_id(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    registry[1].put(7, json.dumps(load_schema_json("tracking_event")))

    first = client.get_schema(7)
    second = client.get_schema(7)

    assert second is first
    assert schema_gets(registry[1]) == ["/schemas/ids/7"]


def test_concurrent_lookups_of_one_id_make_one_request(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    state = registry[1]
    state.put(3, json.dumps(load_schema_json("tracking_event")))
    state.hold = threading.Event()
    start = threading.Barrier(8)
    results: list[object] = []

    def look_up() -> None:
        start.wait(timeout=10)
        results.append(client.get_schema(3))

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    state.wait_for_requests(1)
    state.hold.set()
    for thread in threads:
        thread.join(timeout=10)

    assert not any(thread.is_alive() for thread in threads), "a lookup never returned"
    assert len(results) == 8
    assert schema_gets(state) == ["/schemas/ids/3"]


def test_unknown_id_is_a_decode_error(client: SchemaRegistryClient) -> None:
    with pytest.raises(SchemaRegistryError, match="unknown schema id 99") as caught:
        client.get_schema(99)

    assert isinstance(caught.value, DecodeError)


def test_unknown_id_is_asked_again_later(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    with pytest.raises(SchemaRegistryError):
        client.get_schema(5)
    registry[1].put(5, json.dumps(load_schema_json("tracking_event")))

    assert client.get_schema(5) == load_schema("tracking_event")


@pytest.mark.parametrize("status", [500, 503, 429, 401, 403])
def test_registry_failure_is_retryable_not_a_decode_error(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient, status: int
) -> None:
    registry[1].override = (status, b'{"error_code": 50001, "message": "busy"}')

    with pytest.raises(SchemaRegistryUnavailable, match=f"HTTP {status}") as caught:
        client.get_schema(1)

    assert not isinstance(caught.value, DecodeError)


def test_registry_recovers_after_an_outage(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    registry[1].put(1, json.dumps(load_schema_json("tracking_event")))
    registry[1].override = (503, b"")
    with pytest.raises(SchemaRegistryUnavailable):
        client.get_schema(1)

    registry[1].override = None

    assert client.get_schema(1) == load_schema("tracking_event")


def test_registry_down_is_retryable() -> None:
    with running_registry() as (url, _):
        pass  # stopped: nothing listens on its port any more

    with (
        SchemaRegistryClient(url, timeout=2.0) as client,
        pytest.raises(SchemaRegistryUnavailable, match="failed") as caught,
    ):
        client.get_schema(1)

    assert not isinstance(caught.value, DecodeError)


def test_wrong_url_path_is_not_mistaken_for_an_unknown_id(
    registry: tuple[str, RegistryState],
) -> None:
    with (
        SchemaRegistryClient(registry[0] + "/not-the-registry") as client,
        pytest.raises(SchemaRegistryUnavailable, match="HTTP 404"),
    ):
        client.get_schema(1)


def test_non_json_answer_is_retryable(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    registry[1].override = (200, b"<html>proxy login</html>")

    with pytest.raises(SchemaRegistryUnavailable, match="non-JSON"):
        client.get_schema(1)


@pytest.mark.parametrize(
    ("schema", "schema_type", "problem"),
    [
        ('syntax = "proto3"; message M {}', "PROTOBUF", "PROTOBUF schema, not Avro"),
        ("{not json", None, "no valid schema JSON"),
        ('"string"', None, "not an Avro record schema"),
        ('{"type": "record", "name": "R", "fields": [{"name": "a"}]}', None, "not a valid Avro"),
    ],
)
def test_unusable_schema_is_a_decode_error(
    registry: tuple[str, RegistryState],
    client: SchemaRegistryClient,
    schema: str,
    schema_type: str | None,
    problem: str,
) -> None:
    registry[1].put(4, schema, schema_type)

    with pytest.raises(SchemaRegistryError, match=problem):
        client.get_schema(4)


def test_explicit_avro_schema_type_is_accepted(
    registry: tuple[str, RegistryState], client: SchemaRegistryClient
) -> None:
    registry[1].put(2, json.dumps(load_schema_json("tracking_event")), "AVRO")

    assert client.get_schema(2) == load_schema("tracking_event")


def test_credentials_in_the_url_become_basic_auth_and_stay_secret() -> None:
    state = RegistryState(credentials=("svc@corp", "s3cr:et"))
    state.put(1, json.dumps(load_schema_json("tracking_event")))
    with running_registry(state) as (url, _):
        authed_url = url.replace("http://", "http://svc%40corp:s3cr%3Aet@")
        with SchemaRegistryClient(authed_url) as client:
            assert client.get_schema(1) == load_schema("tracking_event")
            assert client.url == url
            state.override = (503, b"")
            with pytest.raises(SchemaRegistryUnavailable) as caught:
                client.get_schema(2)
        with SchemaRegistryClient(url) as anonymous, pytest.raises(SchemaRegistryUnavailable):
            anonymous.get_schema(1)

    assert "s3cr" not in str(caught.value)
    assert [auth is not None for _, _, auth in state.get_requests()] == [True, True, False]


def test_a_given_http_client_is_used_and_left_open(registry: tuple[str, RegistryState]) -> None:
    registry[1].put(1, json.dumps(load_schema_json("tracking_event")))
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]}) as http:
        client = SchemaRegistryClient(registry[0], http=http)
        client.get_schema(1)
        client.close()

        assert not http.is_closed
    assert seen == ["/schemas/ids/1"]


@pytest.mark.parametrize(
    "url",
    ["localhost:8081", "http://", "ftp://registry", "http://user:hunter2@:8081", "http://h:x"],
)
def test_unusable_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="http:// or https:// URL with a host") as caught:
        SchemaRegistryClient(url)

    assert "hunter2" not in str(caught.value)
