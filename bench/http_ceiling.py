"""Contender (c): the HTTP ceiling. The same calls at the same concurrency, with no Kafka at all:
an httpx ``AsyncClient`` and ``concurrency`` workers taking the next prepared request. Nothing a
consumer does (fetch, decode, per-fulfillment ordering, commits) is in this loop, so no consumer
built on httpx can beat it against the same sandbox.

``--client aiohttp`` runs the same loop on an aiohttp ``ClientSession`` instead: a reference row
showing what the HTTP client itself costs (httpx's is most of a call's CPU on this machine).

Run as ``python -m bench.http_ceiling --url U --secret-file F --requests FILE``. FILE holds one
``[path, body]`` JSON array per line, read lazily (so peak RSS is the client's, not the data's).
Protocol on stdin/stdout, driven by the harness:

1. it sends FILE's requests and prints ``BACKLOG {"first": t, "done": t, "cpu_first": s}``
   (``cpu_first``: its own CPU seconds when it started sending);
2. it reads ``LIVE <rate> <n>`` and n request lines from stdin, sends them evenly spaced at
   ``rate`` per second and prints ``LIVE {"sent": [t, ...]}`` (send time of each, in order);
3. it exits when stdin closes. Times are ``time.time()`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx

from bench.calls import Request, Target

_TIMEOUT_S = 30.0


class _Sender(Protocol):
    """Sends one call; its answer is counted by the sandbox, which the harness asks."""

    async def send(self, request: Request) -> None: ...

    async def aclose(self) -> None: ...


class _HttpxSender:
    def __init__(self, target: Target, concurrency: int) -> None:
        self._http = httpx.AsyncClient(
            base_url=target.url,
            headers=target.headers,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=_TIMEOUT_S,
        )

    async def send(self, request: Request) -> None:
        path, body = request
        await self._http.post(path, json=body)

    async def aclose(self) -> None:
        await self._http.aclose()


class _AiohttpSender:
    def __init__(self, target: Target, concurrency: int) -> None:
        self._url = target.url
        self._http = aiohttp.ClientSession(
            headers=target.headers,
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S),
        )

    async def send(self, request: Request) -> None:
        path, body = request
        async with self._http.post(self._url + path, json=body) as response:
            await response.read()

    async def aclose(self) -> None:
        await self._http.close()


_SENDERS: dict[str, Callable[[Target, int], _Sender]] = {
    "httpx": _HttpxSender,
    "aiohttp": _AiohttpSender,
}


async def _backlog(sender: _Sender, requests: Iterator[Request], concurrency: int) -> None:
    async def worker() -> None:
        for request in requests:  # shared iterator: each worker takes the next request
            await sender.send(request)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _live(sender: _Sender, requests: list[Request], rate: float, concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)
    sent: list[float] = []

    async def send(request: Request) -> None:
        async with slots:
            await sender.send(request)

    tasks = []
    start = time.monotonic()
    for index, request in enumerate(requests):
        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        sent.append(time.time())
        tasks.append(asyncio.create_task(send(request)))
    await asyncio.gather(*tasks)
    _say("LIVE", {"sent": sent})


async def _run(target: Target, path: Path, concurrency: int, client: str) -> None:
    sender = _SENDERS[client](target, concurrency)
    try:
        with path.open() as lines:
            requests = (_parse(line) for line in lines)
            first, cpu_first = time.time(), time.process_time()
            await _backlog(sender, requests, concurrency)
            done = time.time()
            _say("BACKLOG", {"first": first, "done": done, "cpu_first": cpu_first})
        command = await asyncio.to_thread(sys.stdin.readline)
        if command:
            _, rate, count = command.split()
            live = [_parse(sys.stdin.readline()) for _ in range(int(count))]
            await _live(sender, live, float(rate), concurrency)
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await sender.aclose()


def _parse(line: str) -> Request:
    path, body = json.loads(line)
    return str(path), body


def _say(tag: str, payload: dict[str, Any]) -> None:
    print(tag, json.dumps(payload), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_ceiling")
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret-file", required=True, type=Path)
    parser.add_argument("--requests", required=True, type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--client", choices=sorted(_SENDERS), default="httpx")
    args = parser.parse_args(argv)
    target = Target(args.url.rstrip("/"), args.secret_file.read_text().strip())
    asyncio.run(_run(target, args.requests, args.concurrency, args.client))


if __name__ == "__main__":
    main()
