"""``python -m bench.redo_standin``: a Redo stand-in cheap enough that at 0 ms the contender, not
Redo, is the bottleneck of ``make bench``.

The sandbox (``devkit.sandbox``) validates every request against Redo's JSON schemas and answers
with a fulfillment valid against the response schema: ~0.5 ms of CPU per request, so at 0 ms it
was the bottleneck (0.96 of the 2 cores for the bare aiohttp loop's 1,967 requests/s) and the
benchmark measured it. The stand-in keeps only what the benchmark reads: the injected latency,
the bearer token, the JSON body and the call record, through the same control API
(``devkit.sandbox.SandboxControl``: calls, reset, faults' ``latency_ms``, stats). Tests keep the
full sandbox. Prints ``SANDBOX_URL=...`` once listening, like the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp import web

from consumer.ops.runtime import event_loop
from devkit.sandbox.state import now_iso

_ENDPOINT = "/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}/shipment-status"
_OK = b'{"success":true}'


class StandIn:
    def __init__(self, token: str) -> None:
        self._authorization = f"Bearer {token}"
        self.latency_s = 0.0
        self.calls: list[dict[str, Any]] = []
        self.stats: Counter[str] = Counter()

    async def update(self, request: web.Request) -> web.Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        received_at = now_iso()
        raw = await request.read()
        status = 200 if request.headers.get("Authorization") == self._authorization else 401
        try:
            body: object = json.loads(raw)
        except ValueError:
            body, status = raw.decode("utf-8", "replace"), 400
        self.calls.append(
            {
                "fulfillment_id": request.match_info["fulfillmentId"],
                "body": body,
                "status_code": status,
                "received_at": received_at,
            }
        )
        self.stats[str(status)] += 1
        return web.Response(status=status, body=_OK, content_type="application/json")

    async def get_calls(self, request: web.Request) -> web.Response:
        calls = self.calls
        if "status_code" in request.query:
            code = int(request.query["status_code"])
            calls = [call for call in calls if call["status_code"] == code]
        return web.json_response({"calls": calls})

    async def delete_calls(self, request: web.Request) -> web.Response:
        self.calls.clear()
        self.stats.clear()
        return web.Response(status=204)

    async def post_faults(self, request: web.Request) -> web.Response:
        faults = await request.json()
        unknown = set(faults) - {"latency_ms"}
        if unknown:
            return web.json_response(
                {"error": f"the stand-in cannot {sorted(unknown)}"}, status=400
            )
        self.latency_s = faults["latency_ms"] / 1000
        return web.json_response({"latency_ms": faults["latency_ms"]})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(_ENDPOINT, self.update)
        app.router.add_get("/_sandbox/calls", self.get_calls)
        app.router.add_delete("/_sandbox/calls", self.delete_calls)
        app.router.add_post("/_sandbox/faults", self.post_faults)
        app.router.add_get("/_sandbox/stats", self.get_stats)
        return app


async def _serve(token: str) -> None:
    runner = web.AppRunner(StandIn(token).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"SANDBOX_URL=http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redo_standin", description=__doc__)
    parser.add_argument("--token", required=True)
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=event_loop) as runner:
        runner.run(_serve(args.token))


if __name__ == "__main__":
    main()
