"""Our SSE response against sse-starlette's ``EventSourceResponse`` at its leanest, same run
(issue 10): fan-out CPU per delivered frame and idle memory per connection, SSE connections only.

    .venv/bin/pip install -e '.[bench]'        # sse-starlette: bench only, not a dependency of dropsync
    .venv/bin/python benchmarks/sse_compare.py [--quick] [--rounds N]

Each round runs both implementations, one after the other, each on a fresh server (uvicorn
``app.main:create_app``, and ``benchmarks.sse_starlette_app:create_app`` which differs only in the
``/events`` response); the figures are the median over the rounds, and the ratio is
sse-starlette / ours. Every connection must receive every event, in order, once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # the benchmark's own helpers
    Server,
    check_every_event_once_in_order,
    database,
    machine,
    make_accounts,
    open_connections,
    raise_fd_limit,
    stop_clients,
    wait_for_deliveries,
)

IMPLEMENTATIONS = {"ours": "app.main:create_app", "sse-starlette": "benchmarks.sse_starlette_app:create_app"}


async def fanout(server: Server, devices: int, writes: int) -> float:
    """Server CPU µs per delivered frame: one user, ``devices`` SSE connections, ``writes`` writes."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        (account,) = await make_accounts(http, 1)
        sinks, tasks = await open_connections(server.url, [(account, "sse")] * devices)
        cpu_before = server.cpu_seconds()

        async def writer(count: int) -> None:
            for _ in range(count):
                response = await http.post("/notifications", json={"title": "fan-out"}, headers=account.headers)
                response.raise_for_status()

        await asyncio.gather(*(writer(writes // 8) for _ in range(8)))
        await wait_for_deliveries(sinks, {account.id: writes}, timeout=300)
        cpu = server.cpu_seconds() - cpu_before
        check_every_event_once_in_order(sinks, {account.id: writes})
        await stop_clients(tasks)
    return cpu / (devices * writes) * 1e6


async def idle(server: Server, connections: int) -> float:
    """Server RSS growth per idle SSE connection, in KiB (then each must still get an event)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        accounts = await make_accounts(http, 10)
        warm, warm_tasks = await open_connections(server.url, [(accounts[0], "sse")] * 2)
        await asyncio.sleep(1)
        before = server.rss_bytes()
        sinks, tasks = await open_connections(server.url, [(accounts[i % 10], "sse") for i in range(connections)])
        await asyncio.sleep(2)
        after = server.rss_bytes()
        for account in accounts:
            (
                await http.post("/notifications", json={"title": "still there?"}, headers=account.headers)
            ).raise_for_status()
        expected = {account.id: 1 for account in accounts}
        await wait_for_deliveries(sinks + warm, expected, timeout=60)
        check_every_event_once_in_order(sinks + warm, expected)
        await stop_clients(tasks + warm_tasks)
    return (after - before) / connections / 1024


def measure(factory: str, quick: bool) -> dict[str, float]:
    devices, writes, connections = (200, 200, 1000) if quick else (1000, 1000, 5000)
    figures = {}
    with database("sqlite") as url:
        server = Server(url, factory=factory).start()
        try:
            figures["fanout_cpu_us_per_frame"] = asyncio.run(fanout(server, devices, writes))
        finally:
            server.stop()
    with database("sqlite") as url:
        server = Server(url, factory=factory).start()
        try:
            figures["idle_kib_per_connection"] = asyncio.run(idle(server, connections))
        finally:
            server.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    raise_fd_limit()
    started = time.time()
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(args.rounds):
        for name, factory in IMPLEMENTATIONS.items():
            rounds[name].append(measure(factory, args.quick))
    medians: dict[str, dict[str, float]] = {
        name: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
        for name, runs in rounds.items()
    }
    ratios = {key: round(medians["sse-starlette"][key] / medians["ours"][key], 2) for key in medians["ours"]}
    line: dict[str, Any] = {
        "scenario": "sse-compare",
        "quick": args.quick,
        "rounds": args.rounds,
        "machine": machine(),
        "figures": medians,
        "ratio_sse_starlette_to_ours": ratios,
        "wall_s": round(time.time() - started, 1),
    }
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
