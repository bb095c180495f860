"""dropsync benchmark: a load generator (this process) against a real server (a uvicorn subprocess).

    .venv/bin/python benchmarks/bench.py all            # every scenario, SPEC §8 sizes
    .venv/bin/python benchmarks/bench.py latency --quick

Scenarios (SPEC §8):
  latency  1,000 connections (half SSE, half WS, over 100 users), 200 writes/s for 20 s:
           p50/p99 from the write's response to receipt, per transport
  fanout   one user, 1,000 devices, 1,000 writes: deliveries/s, server CPU µs per delivered frame
  idle     5,000 idle connections: server RSS growth per connection
  writes   writes/s with their events, on SQLite and on PostgreSQL

Each scenario prints one JSON line (the machine, the settings, the figures) and fails loudly
(exit 1) unless every connection got every event of its user, in order, exactly once.
Everything runs on loopback; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("DROPSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchmarkFailed(Exception):
    """A scenario's check failed: some connection missed, repeated or reordered an event."""


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    database_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    factory: str = "app.main:create_app"  # benchmarks/sse_compare.py swaps in a bench-only variant

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {
            **os.environ,
            "DROPSYNC_DATABASE_URL": self.database_url,
            "DROPSYNC_DEMO": "false",
            "DROPSYNC_RATE_LIMIT": "false",
            "DROPSYNC_LOG_LEVEL": "warning",
        }
        command = [
            sys.executable, "-m", "uvicorn", self.factory, "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--log-level", "warning",
            "--ws-per-message-deflate", "false", "--backlog", "8192", "--timeout-graceful-shutdown", "5",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=REPO, env=env, preexec_fn=raise_fd_limit)  # noqa: PLW1509
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError("the server did not start within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def rss_bytes(self) -> int:
        assert self.process is not None
        return int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1]) * PAGE_SIZE


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="dropsync-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"dropsync_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def running_server(kind: str = "sqlite") -> Iterator[Server]:
    with database(kind) as url:
        server = Server(url).start()
        try:
            yield server
        finally:
            server.stop()


# --------------------------------------------------------------------------- clients


@dataclass
class Received:
    """What one connection received: event ids in arrival order and their arrival times."""

    user_id: int
    transport: str
    ids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: str | None = None


_ID_PREFIX = b'{"id":'


def _envelope_id(payload: bytes) -> int:
    # Envelopes start with {"id":<n>, — read the id without decoding the whole document.
    end = payload.index(b",", len(_ID_PREFIX))
    return int(payload[len(_ID_PREFIX) : end])


class _StreamProtocol(asyncio.Protocol):
    """A lean client, so that the load generator costs less per frame than the server it measures.

    It parses only what the checks need (the envelope's id), straight from the socket's bytes.
    """

    def __init__(self, sink: Received, keep_payloads: bool, request: bytes) -> None:
        self.sink = sink
        self.keep_payloads = keep_payloads
        self.request = request
        self.buffer = b""
        self.headers_done = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.headers_done:
            head, separator, rest = self.buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            if b" 200 " not in head.split(b"\r\n", 1)[0] and b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.sink.closed = head.split(b"\r\n", 1)[0].decode()
                self.done.set_result(None)
                return
            self.headers_done = True
            self.buffer = rest
        self.consume(time.perf_counter())

    def message(self, payload: bytes, now: float) -> None:
        if payload.startswith(_ID_PREFIX):
            self.sink.ids.append(_envelope_id(payload))
            self.sink.times.append(now)
            if self.keep_payloads:
                self.sink.payloads.append(payload)
        elif b'"type":"connected"' in payload:
            self.sink.connected.set()
        elif b'"type":"error"' in payload:
            self.sink.closed = payload.decode()

    def consume(self, now: float) -> None:
        raise NotImplementedError


class SSEProtocol(_StreamProtocol):
    """``text/event-stream`` over chunked transfer encoding."""

    def consume(self, now: float) -> None:
        data = bytearray()
        buffer = self.buffer
        while True:  # de-chunk what is complete
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            size = int(buffer[:line_end] or b"0", 16)
            if len(buffer) < line_end + 2 + size + 2:
                break
            data += buffer[line_end + 2 : line_end + 2 + size]
            buffer = buffer[line_end + 2 + size + 2 :]
        self.buffer = buffer
        self.pending = getattr(self, "pending", b"") + bytes(data)
        *frames, self.pending = self.pending.split(b"\n\n")
        for frame in frames:
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    self.message(line[6:], now)


class WSProtocol(_StreamProtocol):
    """The client side of RFC 6455, enough for text frames, pings and close."""

    def consume(self, now: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                break
            payload = buffer[offset : offset + length]
            buffer = buffer[offset + length :]
            if opcode == 1:
                self.message(payload, now)
            elif opcode == 9 and self.transport is not None:  # ping: answer with a masked pong
                self.transport.write(_masked_frame(0xA, payload))
            elif opcode == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.sink.closed = f"close {code}"
                if self.transport is not None:
                    self.transport.close()
        self.buffer = buffer


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = secrets.token_bytes(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def _stream(base: str, protocol: _StreamProtocol) -> None:
    host, port = base.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(lambda: protocol, host, int(port))
    try:
        await protocol.done
    finally:
        transport.close()


async def sse_client(base: str, token: str, sink: Received, keep_payloads: bool) -> None:
    request = f"GET /events?access_token={token} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    await _stream(base, SSEProtocol(sink, keep_payloads, request.encode()))


async def ws_client(base: str, token: str, sink: Received, keep_payloads: bool) -> None:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        f"GET /ws?access_token={token} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await _stream(base, WSProtocol(sink, keep_payloads, request.encode()))


@dataclass
class Account:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_accounts(http: httpx.AsyncClient, count: int) -> list[Account]:
    async def one(index: int) -> Account:
        name, password = f"bench-{index}-{secrets.token_hex(3)}", "bench-password"
        registered = await http.post("/auth/register", json={"username": name, "password": password})
        registered.raise_for_status()
        token = await http.post("/auth/token", json={"username": name, "password": password})
        token.raise_for_status()
        return Account(registered.json()["id"], token.json()["access_token"])

    accounts: list[Account] = []
    for start in range(0, count, 20):
        accounts += await asyncio.gather(*(one(index) for index in range(start, min(count, start + 20))))
    return accounts


async def open_connections(
    base: str, plan: list[tuple[Account, str]], keep_payloads: bool = False, timeout: float = 120
) -> tuple[list[Received], list[asyncio.Task[None]]]:
    """Open one connection per (account, transport), a few hundred at a time; wait for ``connected``."""
    sinks: list[Received] = []
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, len(plan), 250):
        batch = plan[start : start + 250]
        for account, transport in batch:
            sink = Received(account.id, transport)
            client = sse_client if transport == "sse" else ws_client
            sinks.append(sink)
            tasks.append(asyncio.create_task(client(base, account.token, sink, keep_payloads)))
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(sink.connected.wait() for sink in sinks[start:]))
    return sinks, tasks


async def wait_for_deliveries(sinks: list[Received], expected: dict[int, int], timeout: float) -> float:
    """Wait until every connection holds all ``expected[user]`` events; returns when that happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(sink.ids) >= expected.get(sink.user_id, 0) for sink in sinks):
            return time.perf_counter()
        await asyncio.sleep(0.05)
    missing = sum(max(0, expected.get(sink.user_id, 0) - len(sink.ids)) for sink in sinks)
    raise BenchmarkFailed(f"{missing} deliveries missing after {timeout}s")


def check_every_event_once_in_order(sinks: list[Received], expected: dict[int, int]) -> None:
    for sink in sinks:
        want = list(range(1, expected.get(sink.user_id, 0) + 1))
        if sink.ids != want:
            raise BenchmarkFailed(
                f"{sink.transport} connection of user {sink.user_id}: got {len(sink.ids)} events "
                f"{sink.ids[:5]}…{sink.ids[-5:]} (closed: {sink.closed}), want 1..{len(want)}"
            )


async def stop_clients(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --------------------------------------------------------------------------- scenarios


async def scenario_latency(server: Server, quick: bool) -> dict[str, Any]:
    users, per_user, rate, duration = (20, 10, 100, 5) if quick else (100, 10, 200, 20)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
        accounts = await make_accounts(http, users)
        plan = [(account, "sse" if index % 2 == 0 else "ws") for account in accounts for index in range(per_user)]
        sinks, tasks = await open_connections(server.url, plan, keep_payloads=True)
        sent_at: dict[str, float] = {}
        answered_at: dict[str, float] = {}
        writes_per_user: defaultdict[int, int] = defaultdict(int)

        async def write(index: int, account: Account) -> None:
            tag = f"w{index}"
            sent_at[tag] = time.perf_counter()
            response = await http.post("/notifications", json={"title": tag}, headers=account.headers)
            answered_at[tag] = time.perf_counter()
            if response.status_code != 201:
                raise BenchmarkFailed(f"write {tag} failed: {response.status_code} {response.text}")

        total = rate * duration
        start = time.perf_counter()
        pending = []
        for index in range(total):
            account = accounts[index % len(accounts)]
            writes_per_user[account.id] += 1
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(write(index, account)))
        await asyncio.gather(*pending)
        achieved_rate = total / (time.perf_counter() - start)
        await wait_for_deliveries(sinks, writes_per_user, timeout=60)
        check_every_event_once_in_order(sinks, writes_per_user)
        await stop_clients(tasks)

    lags: dict[str, list[float]] = {"sse": [], "ws": []}
    lags_from_request: dict[str, list[float]] = {"sse": [], "ws": []}
    decoder = msgspec.json.Decoder()
    for sink in sinks:
        for payload, received in zip(sink.payloads, sink.times, strict=True):
            tag = decoder.decode(payload)["data"]["title"]
            lags[sink.transport].append(max(0.0, received - answered_at[tag]))
            lags_from_request[sink.transport].append(received - sent_at[tag])
    figures: dict[str, Any] = {"writes": total, "writes_per_s": round(achieved_rate, 1)}
    for transport in ("sse", "ws"):
        figures[transport] = {
            "deliveries": len(lags[transport]),
            "p50_ms": ms(percentile(lags[transport], 0.50)),
            "p99_ms": ms(percentile(lags[transport], 0.99)),
            "max_ms": ms(max(lags[transport])),
            "p50_from_request_ms": ms(percentile(lags_from_request[transport], 0.50)),
            "p99_from_request_ms": ms(percentile(lags_from_request[transport], 0.99)),
        }
    settings = {"connections": len(plan), "users": users, "rate_per_s": rate, "duration_s": duration}
    return {"settings": settings, "figures": figures}


async def scenario_fanout(server: Server, quick: bool) -> dict[str, Any]:
    devices, writes, writers = (200, 200, 8) if quick else (1000, 1000, 8)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        (account,) = await make_accounts(http, 1)
        plan = [(account, "sse" if index % 2 == 0 else "ws") for index in range(devices)]
        sinks, tasks = await open_connections(server.url, plan)
        cpu_before = server.cpu_seconds()
        start = time.perf_counter()

        async def writer(count: int) -> None:
            for _ in range(count):
                response = await http.post("/notifications", json={"title": "fan-out"}, headers=account.headers)
                if response.status_code != 201:
                    raise BenchmarkFailed(f"write failed: {response.status_code}")

        await asyncio.gather(*(writer(writes // writers) for _ in range(writers)))
        writes_done = time.perf_counter()
        finished = await wait_for_deliveries(sinks, {account.id: writes}, timeout=300)
        cpu = server.cpu_seconds() - cpu_before
        check_every_event_once_in_order(sinks, {account.id: writes})
        await stop_clients(tasks)
    delivered = devices * writes
    by_transport = {t: sum(len(s.ids) for s in sinks if s.transport == t) for t in ("sse", "ws")}
    return {
        "settings": {"devices": devices, "writes": writes, "writers": writers},
        "figures": {
            "delivered_frames": delivered,
            "by_transport": by_transport,
            "writes_s": round(writes_done - start, 2),
            "all_delivered_s": round(finished - start, 2),
            "deliveries_per_s": round(delivered / (finished - start)),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_us_per_frame": round(cpu / delivered * 1e6, 2),
            "server_cpu_s_per_million_frames": round(cpu / delivered * 1e6, 2),
        },
    }


async def scenario_idle(server: Server, quick: bool) -> dict[str, Any]:
    connections, users = (1000, 10) if quick else (5000, 50)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        accounts = await make_accounts(http, users)
        warm, warm_tasks = await open_connections(server.url, [(accounts[0], "sse"), (accounts[0], "ws")])
        await asyncio.sleep(1)
        rss_before = server.rss_bytes()
        plan = [(accounts[index % users], "sse" if index % 2 == 0 else "ws") for index in range(connections)]
        sinks, tasks = await open_connections(server.url, plan)
        await asyncio.sleep(2)
        rss_after = server.rss_bytes()
        for account in accounts:  # then every connection must still get an event
            response = await http.post("/notifications", json={"title": "still there?"}, headers=account.headers)
            response.raise_for_status()
        expected = {account.id: 1 for account in accounts}
        await wait_for_deliveries(sinks + warm, expected, timeout=60)
        check_every_event_once_in_order(sinks + warm, expected)
        await stop_clients(tasks + warm_tasks)
    growth = rss_after - rss_before
    by_transport = {t: sum(1 for s in sinks if s.transport == t) for t in ("sse", "ws")}
    return {
        "settings": {"connections": connections, "users": users, "by_transport": by_transport},
        "figures": {
            "rss_before_mib": round(rss_before / 2**20, 1),
            "rss_after_mib": round(rss_after / 2**20, 1),
            "kib_per_connection": round(growth / connections / 1024, 2),
        },
    }


async def _write_rate(server: Server, quick: bool, kind: str) -> dict[str, Any]:
    writers, duration = 8, (3 if quick else 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=16)) as http:
        (account,) = await make_accounts(http, 1)
        product = await http.post(
            "/products",
            json={"sku": "BENCH", "name": "bench", "price": "1.00", "stock": 10**6},
            headers=account.headers,
        )
        product.raise_for_status()
        product_id = product.json()["id"]
        counts = {"notification": 0, "stock": 0}
        stop_at = time.perf_counter() + duration

        async def writer(number: int) -> None:
            stock = 10**6 + number * 10**7
            while time.perf_counter() < stop_at:
                if number % 2:
                    response = await http.post("/notifications", json={"title": "w"}, headers=account.headers)
                    counts["notification"] += response.status_code == 201
                else:
                    stock += 1
                    response = await http.patch(
                        f"/products/{product_id}", json={"stock": stock}, headers=account.headers
                    )
                    counts["stock"] += response.status_code == 200
                if response.status_code >= 300:
                    raise BenchmarkFailed(f"write failed: {response.status_code} {response.text}")

        start = time.perf_counter()
        await asyncio.gather(*(writer(number) for number in range(writers)))
        elapsed = time.perf_counter() - start
        history = await http.get("/events/history", params={"after": 0, "limit": 1}, headers=account.headers)
        latest = history.json()["latest_id"]
        expected_events = 1 + counts["notification"] + 2 * counts["stock"]  # product_added; updated + stock_changed
        if latest != expected_events:
            raise BenchmarkFailed(f"{kind}: {latest} events recorded, {expected_events} expected")
        ids: list[int] = []
        after = 0
        while True:
            page = (
                await http.get("/events/history", params={"after": after, "limit": 1000}, headers=account.headers)
            ).json()["events"]
            if not page:
                break
            ids += [event["id"] for event in page]
            after = ids[-1]
        if ids != list(range(1, expected_events + 1)):
            raise BenchmarkFailed(f"{kind}: the event ids are not exactly 1..{expected_events}")
    writes = counts["notification"] + counts["stock"]
    return {
        "writes": writes,
        "writes_per_s": round(writes / elapsed),
        "events_per_s": round((expected_events - 1) / elapsed),
        "writers": writers,
        "duration_s": duration,
    }


def scenario_writes(quick: bool) -> dict[str, Any]:
    figures = {}
    for kind in ("sqlite", "postgres"):
        with running_server(kind) as server:
            figures[kind] = asyncio.run(_write_rate(server, quick, kind))
    return {"settings": {"mix": "half POST /notifications (1 event), half PATCH stock (2 events)"}, "figures": figures}


SCENARIOS: dict[str, Callable[[Server, bool], Awaitable[dict[str, Any]]]] = {
    "latency": scenario_latency,
    "fanout": scenario_fanout,
    "idle": scenario_idle,
}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run(name: str, quick: bool) -> dict[str, Any]:
    started = time.time()
    if name == "writes":
        result = scenario_writes(quick)
    else:
        with running_server("sqlite") as server:
            result = asyncio.run(SCENARIOS[name](server, quick))
    return {
        "scenario": name,
        "ok": True,
        "quick": quick,
        "machine": machine(),
        **result,
        "wall_s": round(time.time() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=[*SCENARIOS, "writes", "all"])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    raise_fd_limit()
    failed = False
    for name in [*SCENARIOS, "writes"] if args.scenario == "all" else [args.scenario]:
        try:
            line = run(name, args.quick)
        except BenchmarkFailed as exc:
            line = {"scenario": name, "ok": False, "error": str(exc)}
            failed = True
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
