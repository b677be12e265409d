"""Shared pytest fixtures, one clearly marked block per concern."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from devkit.broker import (
    broker_responds,
    create_topic,
    delete_topics,
    kafka_cluster,
    pick_free_ports,
)

# ---------------------------------------------------------------------------------------------
# Kafka broker (devkit.broker)
# ---------------------------------------------------------------------------------------------

DOCKER_KAFKA_START_TIMEOUT_S = 120.0


class TopicFactory(Protocol):
    def __call__(self, partitions: int = 3, config: dict[str, str] | None = None) -> str: ...


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap address of the session's Kafka cluster, started once and stopped at the end.

    Default: `devkit.broker.kafka_cluster()`, i.e. `$KAFKA_BOOTSTRAP_SERVERS` when set, else a
    LocalKafka (real broker from the Maven Central jars) on free loopback ports.

    With `TRACKING_TEST_DOCKER=1` the broker is instead the official `apache/kafka` image from
    docker-compose.yml, run by pytest-docker's `docker_services` (`docker compose up` now,
    `down -v` at session end). The host port is picked free here and handed to compose as
    `TRACKING_KAFKA_PORT`; the container listens on and advertises that same port, so the address
    the broker hands out in metadata is the one reachable from the host.
    """
    if os.environ.get("TRACKING_TEST_DOCKER") != "1":
        with kafka_cluster() as bootstrap:
            yield bootstrap
        return
    with pytest.MonkeyPatch.context() as patch:
        port = pick_free_ports(1)[0]
        patch.setenv("TRACKING_KAFKA_PORT", str(port))
        services = request.getfixturevalue("docker_services")
        bootstrap = f"127.0.0.1:{port}"
        services.wait_until_responsive(
            check=lambda: broker_responds(bootstrap, timeout=2.0),
            timeout=DOCKER_KAFKA_START_TIMEOUT_S,
            pause=0.5,
        )
        yield bootstrap


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    """pytest-docker: the repo's compose file (its default location is tests/)."""
    return str(Path(__file__).resolve().parent.parent / "docker-compose.yml")


@pytest.fixture
def new_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """Factory for topics named after the test, unique per call; they are deleted afterwards so
    a shared cluster (KAFKA_BOOTSTRAP_SERVERS) is left as found."""
    created: list[str] = []
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:100]

    def make(partitions: int = 3, config: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        create_topic(kafka_bootstrap, name, partitions, config)
        created.append(name)
        return name

    yield make
    delete_topics(kafka_bootstrap, created)


# end of the Kafka broker block --------------------------------------------------------
