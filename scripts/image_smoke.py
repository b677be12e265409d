"""Run the built image with podman the way production runs it, and fail loudly if it misbehaves.

Called by scripts/image-check.sh with the image name. Checks, in order:

1. the image's configured user is the numeric non-root 10001:10001 and it keeps its HEALTHCHECK;
2. inside, with a read-only root filesystem and a tmpfs /tmp: the process runs as uid 10001, the
   virtualenv cannot be written, /tmp can;
3. ``check-config`` accepts a complete configuration (exit 0) and names a missing setting (exit 2);
4. a short real run on the host network against a local Kafka broker and the Redo sandbox: the
   container becomes ready, Redo receives every scan's call, every offset is committed, and
   SIGTERM (proxied by podman to the consumer, PID 1) stops it with exit code 0.

podman runs with runc, the open-files limit at this machine's hard limit and a modest process
limit: podman's defaults ask for more than a container without CAP_SYS_RESOURCE (like a CI
sandbox) may set.
Every container gets a unique name and is removed on the way out, whatever happened.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import IO

import httpx

from devkit.broker import create_topic, kafka_cluster
from devkit.consumer_process import free_port
from devkit.generator import tracking_stream
from devkit.kafka_tools import fully_committed, produce_events, wait_until
from devkit.sandbox import SandboxControl, SandboxServer

SECRET_IN_CONTAINER = "/etc/tracking-consumer/redo/redo-api-secret"
SCANS = 20
NPROC = 4096
"""The container's process limit: podman's default is more than runc may set without
CAP_SYS_RESOURCE; the consumer runs a handful of threads."""


def main(image: str) -> int:
    _check_image_config(image)
    _check_user_and_filesystem(image)
    with tempfile.TemporaryDirectory() as scratch:
        token = f"image-{uuid.uuid4()}"
        secret = Path(scratch) / "redo-api-secret"
        secret.write_text(token)
        _check_config_command(image, secret)
        _real_run(image, secret, token)
    return 0


def _podman_run(*args: str) -> list[str]:
    """``podman run`` as production runs the image: read-only root, a tmpfs /tmp, no root."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limits = [] if nofile == resource.RLIM_INFINITY else ["--ulimit", f"nofile={nofile}:{nofile}"]
    return [
        "podman",
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--name",
        f"tracking-consumer-check-{uuid.uuid4().hex[:8]}",
        "--read-only",
        "--tmpfs",
        "/tmp",
        # The healthcheck's timers need systemd, which a CI container lacks; /readyz is probed.
        "--no-healthcheck",
        *limits,
        "--ulimit",
        f"nproc={NPROC}:{NPROC}",
        *args,
    ]


def _check_image_config(image: str) -> None:
    inspected = json.loads(_run(["podman", "image", "inspect", image]).stdout)[0]
    user = inspected["Config"].get("User")
    assert user == "10001:10001", f"image user is {user!r}, expected 10001:10001"
    assert inspected.get("Healthcheck"), "the image lost its HEALTHCHECK (built in OCI format?)"
    print(f"image config: user {user}, healthcheck kept")


def _check_user_and_filesystem(image: str) -> None:
    probe = (
        "import os\n"
        "def writable(path):\n"
        "    try:\n"
        "        open(path, 'w').close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(os.getuid(), os.getgid(), writable('/opt/venv/probe'), writable('/tmp/probe'))\n"
    )
    out = _run(_podman_run("--entrypoint", "python", image, "-c", probe)).stdout.split()
    assert out == ["10001", "10001", "False", "True"], (
        f"expected uid/gid 10001, a read-only /opt/venv and a writable /tmp; got {out}"
    )
    print("inside: uid 10001, gid 10001, root filesystem read-only, /tmp writable")


def _check_config_command(image: str, secret: Path) -> None:
    env = _env("kafka:9092", "tracking-events", "http://redo.invalid")
    mount = ["--volume", f"{secret}:{SECRET_IN_CONTAINER}:ro"]
    ok = _run(_podman_run(*mount, *env, image, "check-config"), check=False)
    assert ok.returncode == 0, f"check-config refused a complete configuration: {ok.stderr}"
    missing = _env("kafka:9092", "", "http://redo.invalid")
    bad = _run(_podman_run(*mount, *missing, image, "check-config"), check=False)
    assert bad.returncode == 2 and "KAFKA_TOPIC" in bad.stderr, (
        f"check-config without KAFKA_TOPIC: exit {bad.returncode}, stderr {bad.stderr!r}"
    )
    print("check-config: exit 0 when complete, exit 2 naming KAFKA_TOPIC when it is missing")


def _real_run(image: str, secret: Path, token: str) -> None:
    topic = f"image-scans-{uuid.uuid4().hex[:8]}"
    port = free_port()
    with kafka_cluster() as bootstrap, SandboxServer(token=token) as sandbox:
        create_topic(bootstrap, topic, 3)
        events = tracking_stream(5, SCANS // 5, prefix="img")
        produce_events(bootstrap, topic, events)
        group = f"image-{topic}"
        env = [*_env(bootstrap, topic, sandbox.url, group=group), "--env", f"METRICS_PORT={port}"]
        command = _podman_run(
            "--network", "host", "--volume", f"{secret}:{SECRET_IN_CONTAINER}:ro", *env, image
        )
        control = SandboxControl(sandbox.url)
        with tempfile.TemporaryFile() as log:
            container = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            try:
                _wait_serving(container, port, log)
                control.wait_for(len(events), timeout=120)
                wait_until(
                    lambda: fully_committed(bootstrap, group, topic), 60, "offsets committed"
                )
                container.send_signal(signal.SIGTERM)
                code = container.wait(90)
            finally:
                if container.poll() is None:
                    container.kill()
                    container.wait()
            assert code == 0, f"exit code {code} after SIGTERM:\n{_tail(log)}"
        print(
            f"real run: ready, Redo accepted {len(control.successful_calls())} calls, "
            "every offset committed, exit code 0 after SIGTERM"
        )


def _wait_serving(container: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    def ready() -> bool:
        if container.poll() is not None:
            raise RuntimeError(f"container exited with {container.returncode}:\n{_tail(log)}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, 90, "the container's /readyz", interval=0.5)


def _env(bootstrap: str, topic: str, redo_url: str, *, group: str = "tracking") -> list[str]:
    """podman ``--env`` arguments; an empty value leaves the setting out."""
    settings = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        "REDO_API_URL": redo_url,
        "REDO_API_SECRET_FILE": SECRET_IN_CONTAINER,
        "COMMIT_INTERVAL_SECONDS": "0.5",
    }
    return [
        arg for name, value in settings.items() if value for arg in ("--env", f"{name}={value}")
    ]


def _run(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}... exit {done.returncode}: {done.stderr}")
    return done


def _tail(log: IO[bytes], lines: int = 40) -> str:
    log.seek(0)
    text = log.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
