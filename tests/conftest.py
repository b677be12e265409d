"""Shared pytest fixtures, one clearly marked block per concern."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
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
from devkit.sandbox import SandboxControl, SandboxServer
from tests.support.sandbox_requests import SANDBOX_TOKEN

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


# the Redo sandbox and the consumer's environment ------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(token=SANDBOX_TOKEN) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxControl]:
    """The session's sandbox, with an empty record and no faults at the start of each test."""
    with SandboxControl(sandbox_server.url) as control:
        control.clear_faults()
        control.reset()
        yield control
        control.clear_faults()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "redo-secret"
    path.write_text(SANDBOX_TOKEN)
    return path


@pytest.fixture
def consumer_env(
    kafka_bootstrap: str, sandbox_server: SandboxServer, secret_file: Path
) -> Callable[..., dict[str, str]]:
    """Environment for a consumer process reading ``topic`` and calling the sandbox; fast
    commits and short retry delays so tests finish quickly."""

    def make(topic: str, **overrides: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": f"group-{topic}",
            "REDO_API_URL": sandbox_server.url,
            "REDO_API_SECRET_FILE": str(secret_file),
            "COMMIT_INTERVAL_SECONDS": "0.2",
            "RETRY_INITIAL_SECONDS": "0.05",
            "RETRY_MAX_SECONDS": "0.5",
            "AUTH_RETRY_SECONDS": "0.5",
            "SHUTDOWN_GRACE_SECONDS": "10",
            "LOG_LEVEL": "INFO",
            **overrides,
        }

    return make
