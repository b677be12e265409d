"""``tracking-consumer`` / ``python -m consumer``: run the service or check its configuration.

Exit codes: 0 clean stop, 2 invalid configuration (one line on stderr naming the setting).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from types import FrameType

from consumer.config import Settings, load_settings
from consumer.errors import ConfigError

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracking-consumer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="consume tracking events and call Redo")
    run.add_argument(
        "--dry-run", action="store_true", help="log the calls it would make, send nothing"
    )
    commands.add_parser("check-config", help="validate the settings and the rules file, then exit")
    args = parser.parse_args(argv)

    try:
        settings = _validated_settings()
    except ConfigError as exc:
        print(f"tracking-consumer: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print("configuration ok")
        return 0

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_before_the_loop)
    from consumer.app import run_service
    from consumer.ops.logs import configure_logging
    from consumer.ops.runtime import event_loop

    configure_logging(settings.log_level)
    try:
        with asyncio.Runner(loop_factory=event_loop) as runner:
            runner.run(run_service(settings, dry_run=args.dry_run))
    except ConfigError as exc:
        print(f"tracking-consumer: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _stop_before_the_loop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM while the modules load (about a second): nothing started yet, a clean exit 0.
    The service's own handlers replace this one before its first Kafka call."""
    raise SystemExit(0)


def _validated_settings() -> Settings:
    """Everything that can be checked before touching the network: settings and files."""
    from consumer.kafka.config import librdkafka_overrides
    from consumer.redo.secrets import SecretProvider
    from consumer.rules import load_rules
    from consumer.serde.events import build_decoder

    settings = load_settings()
    librdkafka_overrides()
    SecretProvider.from_settings(settings)
    load_rules(settings.rules_file)
    if settings.avro_framing == "raw":
        build_decoder(settings)
    return settings
