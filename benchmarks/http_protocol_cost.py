"""Server CPU per ``GET /health`` for each HTTP protocol uvicorn can run dropsync with.

    .venv/bin/python benchmarks/http_protocol_cost.py [requests per round] [rounds]

Starts one server per protocol (SQLite, no access log), sends the requests over 4 keep-alive
connections, and reads the server's CPU time from /proc before and after; rounds alternate the
protocols so that a noisy neighbour hits them alike. Prints microseconds of server CPU per request.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.servers import ServerProcess, sqlite_database

PROTOCOLS = {
    "httptools": "httptools",
    "guarded httptools": "app.serving:GuardedHttpToolsProtocol",
    "h11": "h11",
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def hammer(url: str, count: int) -> None:
    async def worker(share: int) -> None:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(share):
                (await http.get("/health")).raise_for_status()

    await asyncio.gather(*(worker(count // 4) for _ in range(4)))


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    with sqlite_database() as url:
        servers = {
            name: ServerProcess(env={"DROPSYNC_DATABASE_URL": url}, extra_args=("--http", protocol)).start()
            for name, protocol in PROTOCOLS.items()
        }
        try:
            for server in servers.values():
                asyncio.run(hammer(server.url, 400))  # warm-up
            for _ in range(rounds):
                for name, server in servers.items():
                    assert server.process is not None
                    before = cpu_s(server.process.pid)
                    asyncio.run(hammer(server.url, count))
                    results[name].append((cpu_s(server.process.pid) - before) / count * 1e6)
        finally:
            for server in servers.values():
                server.stop()
    base = statistics.median(results["httptools"])
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:18} {median:6.0f} us/request  ({median / base:.2f}x httptools; rounds: {samples})")


if __name__ == "__main__":
    main()
