"""The project's local Apache Kafka: a real KRaft single node run from Maven Central jars.

Why this and not a container or a mock (docs/design.md §11): any machine with Java 17 and Maven
gets a real broker without a Docker engine. The jars are fetched once by Maven and cached; every
LocalKafka runs in its own temp work dir on free loopback ports, so concurrent sessions never
collide.

CLI: `python -m devkit.broker fetch` pre-fetches the jars (CI); `python -m devkit.broker run`
starts a broker, prints its bootstrap address and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from types import FrameType, TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# The log4j2 version Kafka itself depends on; we add its slf4j binding so broker logs reach a file.
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
LOG_CONFIG = Path(__file__).with_name("kafka-log4j2.yaml")
DEFAULT_HEAP = "768m"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
TOPIC_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.1
_LOG_TAIL_LINES = 40

_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tracking-consumer.devkit</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or kept running."""


class _PortTakenError(BrokerError):
    """Another process bound one of our ports between picking it and the broker binding it."""


def default_cache_root() -> Path:
    """`$TRACKING_CONSUMER_CACHE`, else `~/.cache/tracking-consumer`."""
    configured = os.environ.get("TRACKING_CONSUMER_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "tracking-consumer"


def ensure_kafka_libs(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> Path:
    """Return `<cache>/kafka-<version>/libs` holding Kafka's runtime jars, fetching them once.

    The fetch lands in a temp dir renamed into place, under a file lock, so a present `libs` dir is
    always complete and two processes never fetch at the same time.
    """
    home = (cache_dir if cache_dir is not None else default_cache_root()) / f"kafka-{version}"
    libs = home / "libs"
    if libs.is_dir():
        return libs
    mvn = _require_tool("mvn", "Maven")
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".fetch.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not libs.is_dir():
            _fetch_libs(mvn, version, home, libs)
    return libs


def _fetch_libs(mvn: str, version: str, home: Path, libs: Path) -> None:
    with tempfile.TemporaryDirectory(dir=home, prefix=".fetch-") as tmp:
        work = Path(tmp)
        pom = work / "pom.xml"
        pom.write_text(_POM.format(scala=SCALA_VERSION, kafka=version, log4j=LOG4J_VERSION))
        command = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={work / 'libs'}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = _tail_lines(result.stdout + result.stderr)
            raise BrokerError(
                f"Maven could not fetch Kafka {version} (exit {result.returncode}):\n{output}"
            )
        (work / "libs").rename(libs)


def _require_tool(name: str, what: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerError(
            f"{what} (`{name}`) is not on PATH. The local Kafka broker needs Java 17+ and Maven; "
            "install them, or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    return path


def pick_free_ports(count: int) -> list[int]:
    """Ask the kernel for `count` distinct free loopback ports (held together so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def broker_responds(bootstrap: str, timeout: float) -> bool:
    """True when a broker at `bootstrap` answers a metadata request within `timeout` seconds."""
    # log_level 0: while the broker is still starting, librdkafka would print connection errors.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    config: dict[str, str] | None = None,
    timeout: float = TOPIC_TIMEOUT_S,
) -> None:
    """Create a topic (cluster-default replication) and wait until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(name, num_partitions=partitions, config=config or {})
    admin.create_topics([new], operation_timeout=timeout)[name].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while not _has_leaders(admin, name, partitions, timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() >= deadline:
            raise BrokerError(f"topic {name!r}: not all {partitions} partitions have a leader")
        time.sleep(_POLL_INTERVAL_S)


def _has_leaders(admin: AdminClient, name: str, partitions: int, timeout: float) -> bool:
    try:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
    except KafkaException:
        return False
    if topic is None or topic.error is not None or len(topic.partitions) != partitions:
        return False
    return all(p.error is None and p.leader >= 0 for p in topic.partitions.values())


def delete_topics(bootstrap: str, names: list[str], timeout: float = TOPIC_TIMEOUT_S) -> None:
    """Delete topics and wait for the controller to accept the deletion."""
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        future.result(timeout=timeout)


class LocalKafka:
    """A KRaft broker+controller JVM on free loopback ports, in its own temp work dir.

    The JVM runs in its own process group, so Ctrl-C in a terminal reaches only us and `stop()`
    shuts it down in order. Broker logs go to `log_path`, never to our stdout. `start_timeout`
    bounds the wait for the launched JVM to answer metadata requests.
    """

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        heap: str = DEFAULT_HEAP,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self._cache_dir = cache_dir
        self._heap = heap
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._work_dir: Path | None = None
        self._port: int | None = None
        self._ports: tuple[int, int] | None = None  # broker, controller: kept across kill()

    @property
    def bootstrap_servers(self) -> str:
        if self._port is None or self._proc is None:
            raise BrokerError("LocalKafka is not running")
        return f"127.0.0.1:{self._port}"

    @property
    def log_path(self) -> Path:
        if self._work_dir is None:
            raise BrokerError("LocalKafka has no work dir (not started)")
        return self._work_dir / "server.log"

    def start(self) -> str:
        """Start the broker and return its bootstrap address once it answers metadata requests."""
        if self._proc is not None:
            raise BrokerError("LocalKafka is already running")
        java = _require_tool("java", "Java")
        libs = ensure_kafka_libs(cache_dir=self._cache_dir)
        try:
            try:
                self._start_once(java, libs)
            except _PortTakenError:
                self._shutdown()
                self._start_once(java, libs)
        except BaseException:
            self._shutdown()
            raise
        return self.bootstrap_servers

    def wait(self) -> int:
        """Block until the broker process exits; return its exit code."""
        if self._proc is None:
            raise BrokerError("LocalKafka is not running")
        return self._proc.wait()

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after a bound) and remove its work dir.

        Raises BrokerError, with the log tail, if the broker had already died on its own: whatever
        ran against it saw a dead cluster and should say so.
        """
        crashed = self._proc is not None and self._proc.poll() is not None
        report = self._describe_exit() if crashed else ""
        self._shutdown()
        if crashed:
            raise BrokerError(report)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: no shutdown, and the work dir, log dir and ports
        are kept for `restart()`."""
        proc, self._proc = self._proc, None
        if proc is None:
            raise BrokerError("LocalKafka is not running")
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self) -> str:
        """Start a killed broker again on the same ports and log dir (the recovery path of a
        crashed node); returns the bootstrap address, unchanged."""
        if self._proc is not None:
            raise BrokerError("LocalKafka is still running; kill() it first")
        if self._ports is None or self._work_dir is None:
            raise BrokerError("LocalKafka was never started")
        try:
            self._launch(
                _require_tool("java", "Java"), ensure_kafka_libs(cache_dir=self._cache_dir)
            )
        except BaseException:
            self._shutdown()
            raise
        return self.bootstrap_servers

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the broker log and of the JVM's own stdout/stderr."""
        if self._work_dir is None:
            return ""
        parts = []
        for name in ("server.log", "console.log"):
            path = self._work_dir / name
            text = path.read_text(errors="replace") if path.exists() else ""
            if text.strip():
                parts.append(f"--- {name} (tail) ---\n{_tail_lines(text, lines)}")
        return "\n".join(parts)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_once(self, java: str, libs: Path) -> None:
        broker_port, controller_port = pick_free_ports(2)
        work_dir = Path(tempfile.mkdtemp(prefix="tracking-kafka-"))
        self._work_dir = work_dir
        self._ports = (broker_port, controller_port)
        properties = work_dir / "server.properties"
        properties.write_text(_server_properties(broker_port, controller_port, work_dir / "data"))
        self._format_storage(_java_command(java, libs, self._heap, work_dir), properties)
        self._launch(java, libs)

    def _launch(self, java: str, libs: Path) -> None:
        """Run the JVM on the formatted work dir and wait until it answers."""
        assert self._work_dir is not None and self._ports is not None
        java_command = _java_command(java, libs, self._heap, self._work_dir)
        properties = self._work_dir / "server.properties"
        with (self._work_dir / "console.log").open("ab") as console:
            self._proc = subprocess.Popen(
                [*java_command, "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._port = self._ports[0]
        self._await_ready(self._proc, self._port)

    def _format_storage(self, java_command: list[str], properties: Path) -> None:
        command = [
            *java_command,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            _new_cluster_id(),
            "--config",
            str(properties),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = _tail_lines(result.stdout + result.stderr)
            raise BrokerError(f"formatting the Kafka log dir failed:\n{output}\n{self.log_tail()}")

    def _await_ready(self, proc: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + self._start_timeout
        bootstrap = f"127.0.0.1:{port}"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"Kafka did not answer on {bootstrap} within {self._start_timeout:.0f}s\n"
                    f"{self.log_tail()}"
                )
            if _accepts_connections(port) and broker_responds(bootstrap, min(remaining, 2.0)):
                return
            try:
                proc.wait(timeout=_POLL_INTERVAL_S)
            except subprocess.TimeoutExpired:
                continue
            report = self._describe_exit()
            if "BindException" in report or "Address already in use" in report:
                raise _PortTakenError(report)
            raise BrokerError(report)

    def _describe_exit(self) -> str:
        code = self._proc.returncode if self._proc is not None else None
        return f"the Kafka broker exited with code {code}\n{self.log_tail()}"

    def _shutdown(self) -> None:
        proc, self._proc, self._port, self._ports = self._proc, None, None, None
        if proc is not None:
            _terminate(proc)
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (Kafka shuts down cleanly), SIGKILL it if that takes too long."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _java_command(java: str, libs: Path, heap: str, work_dir: Path) -> list[str]:
    return [
        java,
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        f"-Dkafka.logs.dir={work_dir}",
        "-cp",
        f"{libs}/*",
    ]


def _server_properties(broker_port: int, controller_port: int, data_dir: Path) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        # Fewer coordinator partitions than the default 50: the first group join on a small
        # single node does not wait for 50 partitions to load.
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _new_cluster_id() -> str:
    """A Kafka Uuid string: 22 url-safe base64 chars, not starting with '-' (read as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail_lines(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextmanager
def kafka_cluster() -> Iterator[str]:
    """Yield a bootstrap address: `$KAFKA_BOOTSTRAP_SERVERS` if set, else a LocalKafka's."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if existing:
        yield existing
        return
    with LocalKafka() as kafka:
        yield kafka.bootstrap_servers


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_until_interrupted() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    with LocalKafka() as kafka:
        print(kafka.bootstrap_servers, flush=True)
        print(f"broker log: {kafka.log_path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            kafka.wait()
        except KeyboardInterrupt:
            print("stopping the broker", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.broker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help=f"fetch and cache the Kafka {KAFKA_VERSION} jars")
    commands.add_parser("run", help="run a local broker until Ctrl-C/SIGTERM")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(ensure_kafka_libs())
        else:
            _run_until_interrupted()
    except BrokerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
