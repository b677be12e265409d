"""Start-up with the broker unreachable: the consumer says so in its log within 10 s and keeps
saying it, serves /healthz and /metrics from the start with /readyz false, and SIGTERM ends it
cleanly. No broker is needed: the bootstrap address is a loopback port nobody listens on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from devkit.consumer_process import ConsumerProcess, free_port
from devkit.kafka_tools import wait_until


def test_unreachable_broker_at_start_is_logged_probed_and_stops_cleanly() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # bound and released at once: closed
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": "tracking-events",
        "KAFKA_GROUP_ID": "startup-test",
        "REDO_API_SECRET": "startup-test-secret",
        "REDO_API_URL": "http://127.0.0.1:9/",  # never called: nothing is consumed
        "LOG_LEVEL": "INFO",
    }
    line = f"Kafka not reachable at {bootstrap}: "
    with ConsumerProcess(env) as proc:
        started = time.monotonic()

        def logged() -> int:
            proc.alive_or_fail()
            return proc.log_path.read_text(errors="replace").count(line)

        wait_until(logged, 10, f"{line!r} in the log within 10 s (log: {proc.tail()})")
        assert time.monotonic() - started < 10
        assert proc.probe("/healthz") == 200, "not alive while waiting for the broker"
        readyz = httpx.get(proc.url + "/readyz", timeout=5)
        assert readyz.status_code == 503, "ready without a broker"
        assert readyz.text.startswith(line), readyz.text
        assert proc.metric("tracking_redo_auth_blocked", secret="default") == 0, "no /metrics"

        # The next attempt (3 s) after the first retry delay (1 s) logs again.
        wait_until(lambda: logged() >= 2, 15, f"a second {line!r} (log: {proc.tail()})")
        assert proc.probe("/healthz") == 200

        stopping = time.monotonic()
        assert proc.stop(timeout=20) == 0, proc.tail()
        assert time.monotonic() - stopping < 10, "SIGTERM waited for more than one attempt"
        output = proc.log_path.read_text(errors="replace")
    assert "Traceback" not in output, output
    assert '"stopped"' in output


@pytest.mark.broker
def test_a_missing_input_topic_with_the_broker_reachable_exits_2_with_one_line(
    kafka_bootstrap: str,
) -> None:
    topic = f"missing-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDO_"))},
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": "startup-test",
        "REDO_API_SECRET": "startup-test-secret",
        "METRICS_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "invalid configuration" in line]
    assert len(errors) == 1 and "KAFKA_TOPIC" in errors[0] and topic in errors[0], result.stderr
    assert "Traceback" not in result.stderr
