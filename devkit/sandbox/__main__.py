"""``python -m devkit.sandbox --token T [--port 0] [--host 127.0.0.1] [--prefix /v2.2]``.

Runs the sandbox in the foreground and prints one line, ``SANDBOX_URL=http://HOST:PORT[PREFIX]``,
once it listens, so the demo and the benchmark can start it as a subprocess and read its URL.
SIGTERM or SIGINT stops it cleanly (exit code 0).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from consumer.ops.runtime import event_loop
from devkit.sandbox.app import build_app
from devkit.sandbox.server import base_url, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.sandbox", description=__doc__)
    parser.add_argument("--token", required=True, help="the bearer token the sandbox accepts")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--prefix", default="", help="path prefix of every route, e.g. /v2.2")
    args = parser.parse_args(argv)
    # The consumer's event loop: on one machine with the consumer and the broker, the sandbox's
    # CPU per request is CPU the consumer under test does not get.
    with asyncio.Runner(loop_factory=event_loop) as runner:
        runner.run(_run(args.token, args.host, args.port, args.prefix))


async def _run(token: str, host: str, port: int, prefix: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def announce(actual_port: int) -> None:
        print(f"SANDBOX_URL={base_url(host, actual_port, prefix)}", flush=True)

    await serve(build_app(token, prefix=prefix), host, port, on_listening=announce, stop=stop)


if __name__ == "__main__":
    main()
