"""dropsync benchmark: a load generator (this process) against a real server (a uvicorn subprocess).

    .venv/bin/python benchmarks/bench.py all                 # every scenario, full sizes
    .venv/bin/python benchmarks/bench.py latency --quick     # one scenario, smaller sizes
    .venv/bin/python benchmarks/bench.py rest --repo /tmp/before   # the server from another checkout

Scenarios (issue 9; SQLite unless ``--database postgres``; ``writes`` runs both):
  rest     server CPU per request of each REST endpoint (GET /auth/me, GET and PATCH /products/{id},
           POST /notifications, the lists at limit=50), one sequential keep-alive client, as a ratio
           to the framework floor GET /health measured in the same process and run
  latency  1,000 connections (half SSE, half WS, 100 users), 200 stock PATCHes/s (2 events each)
           for 20 s: delivery p50/p99/max from the write's request (and from its response), the
           writes' own HTTP times; ratio: delivery p99 to the writes' HTTP p99
  mixed    the latency load, plus another user's 1,000-item bulk stock update every 2 s after a
           calm phase: small writes' delivery from the request in each phase (ratio bulk/calm),
           the bulk requests' times, every connection (the bulk user's too) lossless and open
  stall    a 20,000-row seller feed import (served by this process on loopback) while ~100 streams
           of another user and some of the importer are open, heartbeats every 50 ms: the longest
           silence of any stream and /health probed every 20 ms, before (idle baseline) and during
           the import (ratio during/before), and the import's duration
  fanout   one user, 1,000 devices, 1,000 writes: deliveries/s, server CPU µs per delivered frame
  idle     5,000 idle connections: server RSS growth per connection
  writes   mixed writes/s (stock PATCH, POST /notifications, product create, order create) by 8
           users with 3 keep-alive clients each, on SQLite and on PostgreSQL, and GET /health/s
           with the same clients in the same run (ratio)

Each scenario prints one JSON line (the machine, the server's checkout, the settings, the figures,
the in-run ratio and the issue's targets) and exits 1 unless every connection got every event of
its user, in order, exactly once, and none was closed or sent an error. Targets missed are
reported (``within_target``), not failures. Everything runs on loopback; every wait is bounded.

Server CPU is the sum over all the server's threads of ``/proc/<pid>/task/*/schedstat`` (ns);
absolute figures move several-fold between machines of the same kind, the in-run ratios do not.
The clients are lean asyncio protocols (raw HTTP/1.1 keep-alive, SSE and RFC 6455) on uvloop, so
that the load generator costs less than the server it measures (they share two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import gc
import itertools
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
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import httpx
import msgspec

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("DROPSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
T = TypeVar("T")


class BenchmarkFailed(Exception):
    """A scenario's check failed: a connection missed, repeated or reordered an event, or was
    dropped; or a request the benchmark relies on failed."""


@dataclass
class Options:
    """Command-line choices every scenario sees."""

    repo: Path | None = None  # run the server from this checkout (its own .venv), else this one
    database: str = "sqlite"


OPTIONS = Options()


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class CPUSample:
    """CPU time of each thread of the server (ns, from schedstat) and of the process (clock ticks)."""

    threads: dict[int, int]
    ticks: int


@dataclass
class Server:
    database_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    factory: str = "app.main:create_app"  # benchmarks/sse_compare.py swaps in a bench-only variant
    repo: Path | None = None  # another checkout to run the server from (its own .venv)
    env: dict[str, str] = field(default_factory=dict)
    uvicorn_args: tuple[str, ...] = ()

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
            **self.env,
        }
        python = str(self.repo / ".venv" / "bin" / "python") if self.repo else sys.executable
        command = [
            python, "-m", "uvicorn", self.factory, "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--log-level", "warning",
            "--ws-per-message-deflate", "false", "--backlog", "8192", "--timeout-graceful-shutdown", "5",
            "--timeout-keep-alive", "60", *self.uvicorn_args,
        ]  # fmt: skip
        cwd = self.repo or REPO
        self.process = subprocess.Popen(command, cwd=cwd, env=env, preexec_fn=raise_fd_limit)  # noqa: PLW1509
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
                self.process.wait(timeout=15)

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (every thread, live or ended), in clock ticks."""
        assert self.process is not None
        return self._ticks() / CLOCK_TICKS

    def _ticks(self) -> int:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def cpu_sample(self) -> CPUSample:
        assert self.process is not None
        threads: dict[int, int] = {}
        folder = f"/proc/{self.process.pid}/task"
        for name in os.listdir(folder):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError), open(f"{folder}/{name}/schedstat") as file:
                threads[int(name)] = int(file.read().split()[0])  # (a thread may end meanwhile)
        return CPUSample(threads, self._ticks())

    def cpu_since(self, before: CPUSample) -> tuple[float, bool]:
        """Server CPU seconds since ``before``, all threads (ns precision); and whether a thread
        ended meanwhile (its last moments are then missing from schedstat: the tick count, which
        keeps ended threads, is used when it is larger)."""
        after = self.cpu_sample()
        seconds = sum(ns - before.threads.get(tid, 0) for tid, ns in after.threads.items()) / 1e9
        ended = bool(set(before.threads) - set(after.threads))
        if ended:
            seconds = max(seconds, (after.ticks - before.ticks) / CLOCK_TICKS)
        return seconds, ended

    def rss_bytes(self) -> int:
        assert self.process is not None
        return int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1]) * PAGE_SIZE

    def describe(self) -> dict[str, Any]:
        """Which checkout served: its path and commit (``--repo`` makes before/after runs comparable)."""
        path = self.repo or REPO
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return {"repo": str(path), "commit": commit + ("+dirty" if dirty else ""), "database": self.kind}

    @property
    def kind(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgres"


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
def running_server(
    kind: str = "sqlite", env: dict[str, str] | None = None, uvicorn_args: tuple[str, ...] = ()
) -> Iterator[Server]:
    with database(kind) as url:
        server = Server(url, repo=OPTIONS.repo, env=env or {}, uvicorn_args=uvicorn_args).start()
        try:
            yield server
        finally:
            server.stop()


def arun(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the load generator on uvloop (cheaper per socket event than asyncio's own loop)."""
    try:
        import uvloop  # noqa: PLC0415 - installed with uvicorn[standard]; optional all the same
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# --------------------------------------------------------------------------- a lean HTTP/1.1 client


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    sent_at: float  # perf_counter when the request was written to the socket
    answered_at: float  # perf_counter when the whole response had arrived

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


class _HTTPProtocol(asyncio.Protocol):
    """One keep-alive connection: a request at a time, responses with Content-Length or chunked."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, float]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            parsed = self._parse()
            if parsed is not None:
                self.waiter.set_result(parsed)

    def _parse(self) -> tuple[int, bytes, float] | None:
        buffer = self.buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(buffer[:head_end]).lower()
        status = int(head[9:12])
        body_start = head_end + 4
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
            if len(buffer) < body_start + length:
                return None
            body = bytes(buffer[body_start : body_start + length])
            del buffer[: body_start + length]
        elif b"\r\ntransfer-encoding: chunked" in head:
            parts: list[bytes] = []
            position = body_start
            while True:
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    return None
                size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
                if len(buffer) < line_end + 2 + size + 2:
                    return None
                parts.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
                position = line_end + 2 + size + 2
                if size == 0:
                    break
            body = b"".join(parts)
            del buffer[:position]
        else:  # 204, 304: no body
            body = b""
            del buffer[:body_start]
        if b"\r\nconnection: close" in head:
            self.closed = True
        return status, body, time.perf_counter()


class HTTPClient:
    """A persistent HTTP/1.1 connection; reconnects when the server closed it between requests."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.protocol: _HTTPProtocol | None = None

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 30
    ) -> Reply:
        if self.protocol is None or self.protocol.closed:
            loop = asyncio.get_running_loop()
            _, self.protocol = await loop.create_connection(_HTTPProtocol, self.host, self.port)
        protocol = self.protocol
        assert protocol.transport is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        payload = b""
        if body is not None:
            payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        waiter: asyncio.Future[tuple[int, bytes, float]] = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        sent_at = time.perf_counter()
        protocol.transport.write(head.encode() + b"\r\n" + payload)
        try:
            async with asyncio.timeout(timeout):
                status, content, answered_at = await waiter
        except TimeoutError:
            self.close()
            raise BenchmarkFailed(f"{method} {path}: no answer within {timeout} s") from None
        except ConnectionError as exc:
            raise BenchmarkFailed(f"{method} {path}: {exc}") from None
        finally:
            protocol.waiter = None
        return Reply(status, content, sent_at, answered_at)

    def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()
        self.protocol = None


class HTTPPool:
    """Persistent connections shared by concurrent requests: a request takes a free one, else opens
    one more (up to ``max_size``, then it waits), so that a request goes out when it is made."""

    def __init__(self, base: str, size: int, max_size: int | None = None) -> None:
        self.base = base
        self.max_size = max_size or size
        self.clients = [HTTPClient(base) for _ in range(size)]
        self.free: asyncio.Queue[HTTPClient] = asyncio.Queue()
        for client in self.clients:
            self.free.put_nowait(client)

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 30
    ) -> Reply:
        if self.free.empty() and len(self.clients) < self.max_size:
            self.clients.append(HTTPClient(self.base))
            self.free.put_nowait(self.clients[-1])
        client = await self.free.get()
        try:
            return await client.request(method, path, body, token, timeout)
        finally:
            self.free.put_nowait(client)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise BenchmarkFailed(f"{what}: {reply.status} {reply.body[:300]!r}, want {status}")
    return reply


# --------------------------------------------------------------------------- stream clients


@dataclass
class Received:
    """What one connection received: event ids in arrival order, and what the checks need."""

    user_id: int
    transport: str
    ids: list[int] = field(default_factory=list)
    start: int = 0  # the stream's starting point: the ``last_event_id`` of its ``connected`` message
    keep: bytes | None = None  # keep the payloads that contain these bytes (b"": all), with their times
    payloads: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    activity: list[float] | None = None  # when bytes arrived (heartbeats too), if asked for
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: str | None = None  # an error message, a close frame or a refused handshake
    ended: bool = False  # the connection went away (before the benchmark closed it: a drop)


_ID_PREFIX = b'{"id":'
_LAST_EVENT_ID = b'"last_event_id":'


def _envelope_id(payload: bytes) -> int:
    # Envelopes start with {"id":<n>, — read the id without decoding the whole document.
    end = payload.index(b",", len(_ID_PREFIX))
    return int(payload[len(_ID_PREFIX) : end])


def _starting_point(payload: bytes) -> int:
    at = payload.find(_LAST_EVENT_ID)
    if at < 0:
        return 0
    digits = bytearray()
    for byte in payload[at + len(_LAST_EVENT_ID) :]:
        if not 48 <= byte <= 57:
            break
        digits.append(byte)
    return int(digits) if digits else 0  # null: nothing recorded yet


class _StreamProtocol(asyncio.Protocol):
    """A lean client, so that the load generator costs less per frame than the server it measures.

    It parses only what the checks need (the envelope's id), straight from the socket's bytes.
    """

    def __init__(self, sink: Received, request: bytes) -> None:
        self.sink = sink
        self.request = request
        self.buffer = b""
        self.pending = b""
        self.headers_done = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sink.ended = True
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.sink.activity is not None:
            self.sink.activity.append(now)
        self.buffer += data
        if not self.headers_done:
            head, separator, rest = self.buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            status_line = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status_line and b" 101 " not in status_line:
                self.sink.closed = status_line.decode()
                self.done.set_result(None)
                return
            self.headers_done = True
            self.buffer = rest
        self.consume(now)

    def message(self, payload: bytes, now: float) -> None:
        sink = self.sink
        if payload.startswith(_ID_PREFIX):
            sink.ids.append(_envelope_id(payload))
            if sink.keep is not None and sink.keep in payload:
                sink.payloads.append(payload)
                sink.times.append(now)
        elif b'"type":"connected"' in payload:
            sink.start = _starting_point(payload)
            sink.connected.set()
        elif b'"type":"error"' in payload:
            sink.closed = payload.decode()

    def consume(self, now: float) -> None:
        raise NotImplementedError


class SSEProtocol(_StreamProtocol):
    """``text/event-stream`` over chunked transfer encoding (``: ping`` comments count as activity)."""

    def consume(self, now: float) -> None:
        buffer, position, parts = self.buffer, 0, [self.pending]
        while True:  # de-chunk what is complete (offsets, one slice at the end: bursts stay linear)
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                break
            size = int(buffer[position:line_end] or b"0", 16)
            chunk_end = line_end + 2 + size
            if len(buffer) < chunk_end + 2:
                break
            parts.append(buffer[line_end + 2 : chunk_end])
            position = chunk_end + 2
        self.buffer = buffer[position:]
        *frames, self.pending = b"".join(parts).split(b"\n\n")
        for frame in frames:
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    self.message(line[6:], now)


class WSProtocol(_StreamProtocol):
    """The client side of RFC 6455, enough for text frames, pings (answered at once) and close."""

    def consume(self, now: float) -> None:
        buffer, position = self.buffer, 0
        while len(buffer) - position >= 2:
            opcode, length, offset = buffer[position] & 0x0F, buffer[position + 1] & 0x7F, position + 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length, offset = int.from_bytes(buffer[position + 2 : position + 4], "big"), position + 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length, offset = int.from_bytes(buffer[position + 2 : position + 10], "big"), position + 10
            if len(buffer) < offset + length:
                break
            payload = buffer[offset : offset + length]
            position = offset + length
            if opcode == 1:
                self.message(payload, now)
            elif opcode == 9 and self.transport is not None:  # ping: answer with a masked pong
                self.transport.write(_masked_frame(0xA, payload))
            elif opcode == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.sink.closed = f"close {code}"
                if self.transport is not None:
                    self.transport.close()
        self.buffer = buffer[position:]


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


async def sse_client(base: str, token: str, sink: Received) -> None:
    request = f"GET /events?access_token={token} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    await _stream(base, SSEProtocol(sink, request.encode()))


async def ws_client(base: str, token: str, sink: Received) -> None:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        f"GET /ws?access_token={token} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await _stream(base, WSProtocol(sink, request.encode()))


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


async def accounts_for(base: str, count: int) -> list[Account]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        return await make_accounts(http, count)


async def open_connections(
    base: str,
    plan: list[tuple[Account, str]],
    keep_payloads: bool | bytes = False,
    timeout: float = 120,
    track_activity: bool = False,
) -> tuple[list[Received], list[asyncio.Task[None]]]:
    """Open one connection per (account, transport), a few hundred at a time; wait for ``connected``.

    ``keep_payloads``: True keeps every payload (and its arrival time), bytes keep those that
    contain them; ``track_activity`` records when any bytes arrived (heartbeats included)."""
    keep = b"" if keep_payloads is True else (keep_payloads or None)
    sinks: list[Received] = []
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, len(plan), 250):
        batch = plan[start : start + 250]
        for account, transport in batch:
            sink = Received(account.id, transport, keep=keep, activity=[] if track_activity else None)
            client = sse_client if transport == "sse" else ws_client
            sinks.append(sink)
            tasks.append(asyncio.create_task(client(base, account.token, sink)))
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(sink.connected.wait() for sink in sinks[start:]))
    return sinks, tasks


def check_none_dropped(sinks: list[Received]) -> None:
    for sink in sinks:
        if sink.closed is not None or sink.ended:
            raise BenchmarkFailed(
                f"{sink.transport} connection of user {sink.user_id} was dropped "
                f"after {len(sink.ids)} events: {sink.closed or 'connection lost'}"
            )


async def wait_for_deliveries(sinks: list[Received], expected: dict[int, int], timeout: float) -> float:
    """Wait until every connection holds every event of its user up to id ``expected[user]`` (from
    its starting point); returns when that happened. Fails at once when a connection is dropped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_none_dropped(sinks)
        if all(len(sink.ids) >= expected.get(sink.user_id, 0) - sink.start for sink in sinks):
            return time.perf_counter()
        await asyncio.sleep(0.05)
    missing = sum(max(0, expected.get(sink.user_id, 0) - sink.start - len(sink.ids)) for sink in sinks)
    raise BenchmarkFailed(f"{missing} deliveries missing after {timeout}s")


def check_every_event_once_in_order(sinks: list[Received], expected: dict[int, int]) -> None:
    """Every connection got exactly the ids after its starting point up to ``expected[user]``."""
    for sink in sinks:
        want = list(range(sink.start + 1, expected.get(sink.user_id, 0) + 1))
        if sink.ids != want:
            raise BenchmarkFailed(
                f"{sink.transport} connection of user {sink.user_id}: got {len(sink.ids)} events "
                f"{sink.ids[:5]}…{sink.ids[-5:]} (closed: {sink.closed}), want {sink.start + 1}..{want[-1:]}"
            )


async def stop_clients(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def latest_ids(pool: HTTPPool, accounts: list[Account]) -> dict[int, int]:
    """The last recorded event id of each user, from the server's history."""

    async def one(account: Account) -> int:
        reply = expect(
            await pool.request("GET", "/events/history?after=0&limit=1", token=account.token), 200, "history"
        )
        return int(reply.json()["latest_id"] or 0)

    values = await asyncio.gather(*(one(account) for account in accounts))
    return {account.id: value for account, value in zip(accounts, values, strict=True)}


async def check_history_gap_free(pool: HTTPPool, account: Account, last: int) -> None:
    """The user's recorded ids are exactly 1..last."""
    ids: list[int] = []
    while True:
        reply = expect(
            await pool.request("GET", f"/events/history?after={ids[-1] if ids else 0}&limit=1000", token=account.token),
            200,
            "history",
        )
        page = reply.json()["events"]
        if not page:
            break
        ids += [event["id"] for event in page]
    if ids != list(range(1, last + 1)):
        raise BenchmarkFailed(f"user {account.id}: the recorded ids are not exactly 1..{last}")


async def create_products(
    pool: HTTPPool, account: Account, count: int, stock: int = 1000, prefix: str = "P", seller_id: int | None = None
) -> list[int]:
    async def one(index: int) -> int:
        body: dict[str, Any] = {"sku": f"{prefix}-{index}", "name": f"{prefix} {index}", "price": "9.99"}
        body["stock"] = stock
        if seller_id is not None:
            body["seller_id"] = seller_id
        reply = await pool.request("POST", "/products", body, account.token)
        return int(expect(reply, 201, "POST /products").json()["id"])

    ids: list[int] = []
    for start in range(0, count, 200):
        ids += await asyncio.gather(*(one(index) for index in range(start, min(count, start + 200))))
    return ids


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """This process's cycle collector off while the block measures: a full collection of the load
    generator's own objects (its 1,000 connections' received ids) took 40-60 ms here, and the
    frames that arrived meanwhile were counted late. What setup built is frozen first."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


class LoopLag:
    """How late this process's own event loop wakes up (a busy load generator shows here, not in
    the server): a 5 ms sleep in a loop, its overshoot recorded."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.samples.append((now, now - before - 0.005))

    def __enter__(self) -> LoopLag:
        self.task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()

    def max_ms(self, start: float = 0.0, end: float = float("inf")) -> float:
        return ms(max((lag for at, lag in self.samples if start <= at <= end), default=0.0))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def spread(values: list[float]) -> dict[str, Any]:
    """p50, p99 and max in ms, and how many values."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": ms(ordered[int(0.50 * (len(ordered) - 1))]),
        "p99_ms": ms(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]),
        "max_ms": ms(ordered[-1]),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


# --------------------------------------------------------------------------- scenarios


@dataclass
class Endpoint:
    name: str
    method: str
    path: str
    target: float | None  # the bound on server CPU per request, as a ratio to GET /health
    status: int = 200
    body: Callable[[int], Any] | None = None  # the request number -> the body
    items: str | None = None  # a list: the key whose length must be the page size
    token: bool = True


async def scenario_rest(server: Server, quick: bool) -> dict[str, Any]:
    """Server CPU per request of each endpoint over one sequential keep-alive connection, as a ratio
    to GET /health; the endpoints take turns in a few rounds so that a noisy neighbour hits them alike."""
    per_endpoint, rounds, page = (300, 3, 50) if quick else (2000, 4, 50)
    (account,) = await accounts_for(server.url, 1)
    pool = HTTPPool(server.url, 8)
    token = account.token
    sellers = []
    for index in range(page + 10):
        reply = await pool.request("POST", "/sellers", {"name": f"seller {index}"}, token)
        sellers.append(int(expect(reply, 201, "POST /sellers").json()["id"]))
    products = []
    for start in range(0, page + 30, 10):
        products += await asyncio.gather(
            *(
                pool.request(
                    "POST",
                    "/products",
                    {
                        "sku": f"R-{i}",
                        "name": f"r {i}",
                        "price": "9.99",
                        "stock": 1000,
                        "seller_id": sellers[i % len(sellers)],
                    },
                    token,
                )
                for i in range(start, start + 10)
            )
        )
    product_ids = [int(expect(reply, 201, "product").json()["id"]) for reply in products]
    await asyncio.gather(
        *(
            pool.request("POST", "/orders", {"items": [{"product_id": product_id, "quantity": 1}]}, token)
            for product_id in product_ids[: page + 10]
        )
    )
    await asyncio.gather(*(pool.request("POST", "/notifications", {"title": f"n{i}"}, token) for i in range(page + 10)))
    patched = product_ids[0]  # created with stock 1000; PATCHes alternate 1001, 1000: never near the threshold
    endpoints = [
        Endpoint("GET /health", "GET", "/health", None, token=False),
        Endpoint("GET /auth/me", "GET", "/auth/me", 1.5),
        Endpoint("GET /products/{id}", "GET", f"/products/{product_ids[1]}", 2.0),
        Endpoint(
            "PATCH /products/{id} stock",
            "PATCH",
            f"/products/{patched}",
            3.0,
            body=lambda n: {"stock": 1001 if n % 2 == 0 else 1000},
        ),
        Endpoint("POST /notifications", "POST", "/notifications", 2.5, status=201, body=lambda n: {"title": f"r{n}"}),
        Endpoint("GET /products", "GET", f"/products?limit={page}", 4.0, items="items"),
        Endpoint("GET /orders", "GET", f"/orders?limit={page}", 4.0, items="items"),
        Endpoint("GET /sellers", "GET", f"/sellers?limit={page}", 4.0, items="items"),
        Endpoint("GET /notifications", "GET", f"/notifications?limit={page}", 4.0, items="items"),
        Endpoint("GET /events/history", "GET", f"/events/history?after=0&limit={page}", 4.0, items="events"),
    ]
    absent = []
    for endpoint in list(endpoints):  # a list this checkout does not serve (yet) is reported, not measured
        if endpoint.method == "GET" and endpoint.items:
            reply = await pool.request("GET", endpoint.path, token=token)
            if reply.status in (404, 405):
                endpoints.remove(endpoint)
                absent.append(endpoint.name)
    (before_events,) = (await latest_ids(pool, [account])).values()
    client = HTTPClient(server.url)
    counts: dict[str, int] = defaultdict(int)  # requests sent per endpoint (the bodies' numbering)
    cpu: dict[str, float] = defaultdict(float)
    measured: dict[str, int] = defaultdict(int)
    walls: dict[str, list[float]] = defaultdict(list)
    threads_ended: dict[str, bool] = defaultdict(bool)

    async def send(endpoint: Endpoint, check_items: bool) -> Reply:
        number = counts[endpoint.name]
        counts[endpoint.name] += 1
        body = endpoint.body(number) if endpoint.body else None
        reply = await client.request(endpoint.method, endpoint.path, body, token if endpoint.token else None)
        if reply.status != endpoint.status:
            raise BenchmarkFailed(f"{endpoint.name}: {reply.status} {reply.body[:300]!r}")
        if check_items and endpoint.items and len(reply.json()[endpoint.items]) != page:
            raise BenchmarkFailed(f"{endpoint.name}: not a full page of {page}")
        return reply

    for endpoint in endpoints:  # warm-up: caches, prepared statements, code paths
        for index in range(50):
            await send(endpoint, check_items=index == 0)
    for _ in range(rounds):
        for endpoint in endpoints:
            count = per_endpoint // rounds
            cpu_start = server.cpu_sample()
            for index in range(count):
                reply = await send(endpoint, check_items=index == 0)
                walls[endpoint.name].append(reply.answered_at - reply.sent_at)
            seconds, ended = server.cpu_since(cpu_start)
            cpu[endpoint.name] += seconds
            measured[endpoint.name] += count
            threads_ended[endpoint.name] |= ended
    client.close()
    (after_events,) = (await latest_ids(pool, [account])).values()
    pool.close()
    want_events = 2 * counts["PATCH /products/{id} stock"] + counts["POST /notifications"]
    if after_events - before_events != want_events:
        raise BenchmarkFailed(
            f"{after_events - before_events} events recorded, want {want_events} (2 a PATCH, 1 a notification)"
        )
    floor = cpu["GET /health"] / measured["GET /health"]
    figures: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for endpoint in endpoints:
        per_request = cpu[endpoint.name] / measured[endpoint.name]
        figures[endpoint.name] = {
            "server_cpu_ms": round(per_request * 1000, 4),
            "client_p50_ms": spread(walls[endpoint.name])["p50_ms"],
            **({"a_thread_ended": True} if threads_ended[endpoint.name] else {}),
        }
        if endpoint.target is not None:
            ratios[endpoint.name] = {
                "ratio": ratio(per_request, floor),
                "target": endpoint.target,
                "within_target": per_request / floor <= endpoint.target,
            }
    settings = {"requests_per_endpoint": per_endpoint // rounds * rounds, "rounds": rounds, "page": page,
                "connection": "one sequential keep-alive HTTP/1.1 connection", "absent": absent}  # fmt: skip
    return {"settings": settings, "figures": figures, "ratio": ratios}


class _StockData(msgspec.Struct):
    product_id: int | None = None
    new: Any = None


class _StockEnvelope(msgspec.Struct):
    type: str
    data: _StockData


async def _small_writes(server: Server, quick: bool, bulk: bool) -> dict[str, Any]:
    """The latency load (stock PATCHes at a fixed rate, each (product, new stock) unique) and, when
    ``bulk``, another user's 1,000-item bulk stock update every 2 s after a calm first phase."""
    users, per_user, rate, duration = (20, 10, 100, 5) if quick else (100, 10, 200, 20)
    products_per_user, bulk_items, bulk_every, bulk_connections = 2, 1000, 2.0, 10
    calm = (duration / 3 if quick else 10.0) if bulk else 0.0  # mixed: a calm phase, then the bulk phase
    total_s = calm + duration
    accounts = await accounts_for(server.url, users + (1 if bulk else 0))
    bulk_account = accounts.pop() if bulk else None
    pool = HTTPPool(server.url, 16, max_size=512)  # a stalled server does not hold writes back here
    products: dict[int, list[int]] = {}
    for account in accounts:
        products[account.id] = await create_products(pool, account, products_per_user, stock=1000)
    bulk_products = (
        await create_products(pool, bulk_account, bulk_items, stock=1000, prefix="B") if bulk_account else []
    )
    plan = [(account, "sse" if index % 2 == 0 else "ws") for account in accounts for index in range(per_user)]
    sinks, tasks = await open_connections(server.url, plan, keep_payloads=b'"product_stock_changed"')
    bulk_sinks: list[Received] = []
    if bulk_account:
        bulk_plan = [(bulk_account, "sse" if index % 2 == 0 else "ws") for index in range(bulk_connections)]
        bulk_sinks, bulk_tasks = await open_connections(server.url, bulk_plan)
        tasks += bulk_tasks
    starts = {sink.user_id: sink.start for sink in sinks + bulk_sinks}
    await asyncio.gather(*(client.request("GET", "/health") for client in pool.clients))  # connected before

    total = int(rate * total_s)
    scheduled: list[float] = [0.0] * total
    sent: list[float] = [0.0] * total
    answered: list[float] = [0.0] * total
    by_key: dict[tuple[int, int], int] = {}
    writes_per_user: defaultdict[int, int] = defaultdict(int)
    next_stock: dict[int, int] = {}
    bulk_times: list[tuple[float, float]] = []
    bulk_events: list[int] = []

    async def write(index: int, account: Account, product_id: int, new: int) -> None:
        reply = await pool.request("PATCH", f"/products/{product_id}", {"stock": new}, account.token)
        if reply.status != 200:
            raise BenchmarkFailed(f"PATCH {product_id}: {reply.status} {reply.body[:300]!r}")
        sent[index], answered[index] = reply.sent_at, reply.answered_at

    async def bulk_writer(start: float) -> None:
        assert bulk_account is not None
        client = HTTPClient(server.url)
        round_number = 0
        while True:
            at = start + calm + round_number * bulk_every
            if at >= start + total_s:
                break
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            round_number += 1
            stock = 1000 + round_number  # every item changes: 2 events each, + started/completed
            body = {"items": [{"product_id": product_id, "stock": stock} for product_id in bulk_products]}
            reply = await client.request("POST", "/products/bulk/stock-update", body, bulk_account.token, timeout=60)
            expect(reply, 200, "bulk stock update")
            changed = reply.json()["changed"]
            if changed != len(bulk_products):
                raise BenchmarkFailed(f"bulk stock update changed {changed} of {len(bulk_products)}")
            bulk_times.append((reply.sent_at, reply.answered_at))
            bulk_events.append(2 + 2 * changed)
        client.close()

    with collector_paused(), LoopLag() as lag:
        start = time.perf_counter()
        bulk_task = asyncio.create_task(bulk_writer(start)) if bulk_account else None
        pending = []
        for index in range(total):
            account = accounts[index % len(accounts)]
            product_id = products[account.id][(index // len(accounts)) % products_per_user]
            new = next_stock.get(product_id, 1000) + 1
            next_stock[product_id] = new
            by_key[(product_id, new)] = index
            writes_per_user[account.id] += 1
            scheduled[index] = start + index / rate
            delay = scheduled[index] - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(write(index, account, product_id, new)))
        await asyncio.gather(*pending, *([bulk_task] if bulk_task else []))
        achieved_rate = total / (max(answered) - start)
        every = accounts + ([bulk_account] if bulk_account else [])
        latest = await latest_ids(pool, every)
        for account in accounts:
            if latest[account.id] != starts[account.id] + 2 * writes_per_user[account.id]:
                raise BenchmarkFailed(
                    f"user {account.id}: {latest[account.id] - starts[account.id]} events recorded, "
                    f"want {2 * writes_per_user[account.id]} (2 a stock PATCH)"
                )
        if bulk_account and latest[bulk_account.id] != starts[bulk_account.id] + sum(bulk_events):
            raise BenchmarkFailed("the bulk user's recorded events do not add up")
        delivered_at = await wait_for_deliveries(sinks + bulk_sinks, latest, timeout=120)
        loop_lag_max = lag.max_ms(start, delivered_at)  # while measuring, not the checks below
        check_every_event_once_in_order(sinks + bulk_sinks, latest)
        check_none_dropped(sinks + bulk_sinks)
        await stop_clients(tasks)
        pool.close()

    decoder = msgspec.json.Decoder(_StockEnvelope)
    phases = ("calm", "bulk") if bulk else ("all",)
    from_request: dict[str, dict[str, list[float]]] = {p: {"sse": [], "ws": []} for p in phases}
    from_response: dict[str, dict[str, list[float]]] = {p: {"sse": [], "ws": []} for p in phases}
    for sink in sinks:
        for payload, received in zip(sink.payloads, sink.times, strict=True):
            envelope = decoder.decode(payload)
            index = by_key[(envelope.data.product_id or 0, int(envelope.data.new))]
            phase = "all" if not bulk else ("calm" if scheduled[index] < start + calm else "bulk")
            from_request[phase][sink.transport].append(received - sent[index])
            from_response[phase][sink.transport].append(max(0.0, received - answered[index]))
    expected_deliveries = per_user * total
    if sum(len(v) for p in phases for v in from_request[p].values()) != expected_deliveries:
        raise BenchmarkFailed("some product_stock_changed deliveries could not be matched to their write")
    http = [answered[i] - sent[i] for i in range(total)]
    queued = [sent[i] - scheduled[i] for i in range(total)]
    figures: dict[str, Any] = {"writes": total, "writes_per_s": round(achieved_rate, 1)}
    for phase in phases:
        both_request = from_request[phase]["sse"] + from_request[phase]["ws"]
        both_response = from_response[phase]["sse"] + from_response[phase]["ws"]
        figures[phase] = {
            "delivery_from_request": spread(both_request),
            "delivery_from_response": spread(both_response),
            "sse_from_request": spread(from_request[phase]["sse"]),
            "ws_from_request": spread(from_request[phase]["ws"]),
            "write_http": spread(
                [http[i] for i in range(total) if phase == "all" or (scheduled[i] < start + calm) == (phase == "calm")]
            ),
        }
    figures["client_queue_max_ms"] = ms(max(queued))
    figures["bench_loop_lag_max_ms"] = loop_lag_max
    settings: dict[str, Any] = {
        "connections": len(plan), "users": users, "rate_per_s": rate, "duration_s": duration,
        "write": "PATCH /products/{id} {stock} (product_updated + product_stock_changed)",
        "products_per_user": products_per_user, "http_connections_used": len(pool.clients),
    }  # fmt: skip
    if not bulk:
        p99 = figures["all"]["delivery_from_request"]["p99_ms"]
        return {
            "settings": settings,
            "figures": figures,
            "target": {"delivery_p99_from_request_ms": 20, "within_target": p99 <= 20},
            "ratio": {
                "delivery_p99_from_request_to_write_http_p99": ratio(p99, figures["all"]["write_http"]["p99_ms"])
            },
        }
    settings.update({"calm_s": round(calm, 1), "bulk_items": bulk_items, "bulk_every_s": bulk_every,
                     "bulk_user_connections": bulk_connections})  # fmt: skip
    figures["bulk_requests"] = {
        "count": len(bulk_times),
        "events_each": bulk_events[0] if bulk_events else 0,
        "http": spread([answered_at - sent_at for sent_at, answered_at in bulk_times]),
    }
    p99 = figures["bulk"]["delivery_from_request"]["p99_ms"]
    return {
        "settings": settings,
        "figures": figures,
        "target": {"delivery_p99_from_request_ms": 50, "within_target": p99 <= 50, "dropped": 0},
        "ratio": {"bulk_to_calm_delivery_p99": ratio(p99, figures["calm"]["delivery_from_request"]["p99_ms"])},
    }


async def scenario_latency(server: Server, quick: bool) -> dict[str, Any]:
    return await _small_writes(server, quick, bulk=False)


async def scenario_mixed(server: Server, quick: bool) -> dict[str, Any]:
    return await _small_writes(server, quick, bulk=True)


STALL_HEARTBEAT_S = 0.05


def stall_server_settings(rows: int) -> tuple[dict[str, str], tuple[str, ...]]:
    env = {
        "DROPSYNC_FEED_ALLOW_PRIVATE_HOSTS": "true",  # the feed is served by this process on loopback
        "DROPSYNC_FEED_MAX_ROWS": str(rows),
        "DROPSYNC_FEED_MAX_BYTES": str(64 * 1024 * 1024),
        "DROPSYNC_FEED_TIMEOUT_S": "60",
        "DROPSYNC_HEARTBEAT_S": str(STALL_HEARTBEAT_S),  # SSE: a `: ping` after 50 ms of silence
    }
    # WebSocket: uvicorn's protocol-level pings every 50 ms (the next one once the pong is back)
    ping = ("--ws-ping-interval", str(STALL_HEARTBEAT_S), "--ws-ping-timeout", "20")
    return env, ping


async def serve_feed(body: bytes) -> tuple[asyncio.Server, str]:
    """A one-document HTTP server on loopback: the seller's feed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(60):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n" % len(body)
                )
                writer.write(body)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/feed.json"


def longest_silence(activity: list[float], start: float, end: float) -> float:
    """The longest time without any byte arriving within [start, end]."""
    inside = activity[bisect.bisect_left(activity, start) : bisect.bisect_right(activity, end)]
    points = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))


async def scenario_stall(server: Server, quick: bool) -> dict[str, Any]:
    rows, baseline_s = (5000, 2.0) if quick else (20_000, 5.0)
    other_connections, importer_connections = 100, 10
    importer, other = await accounts_for(server.url, 2)
    feed: list[dict[str, Any]] = [
        {"sku": f"FEED-{i:05d}", "name": f"Feed product {i}", "price": "12.50", "stock": 100} for i in range(rows)
    ]
    feed_server, feed_url = await serve_feed(msgspec.json.encode(feed))
    pool = HTTPPool(server.url, 4)
    seller = expect(
        await pool.request("POST", "/sellers", {"name": "feed", "feed_url": feed_url, "feed_format": "json"},
                           importer.token), 201, "POST /sellers")  # fmt: skip
    seller_id = seller.json()["id"]
    plan = [(other, "sse" if i % 2 == 0 else "ws") for i in range(other_connections)]
    plan += [(importer, "sse" if i % 2 == 0 else "ws") for i in range(importer_connections)]
    sinks, tasks = await open_connections(server.url, plan, track_activity=True)
    probes: list[tuple[float, float]] = []  # (sent, response time)
    stop_probing = asyncio.Event()

    async def probe() -> None:
        client = HTTPClient(server.url)
        next_at = time.perf_counter()
        while not stop_probing.is_set():
            reply = expect(await client.request("GET", "/health", timeout=30), 200, "GET /health")
            probes.append((reply.sent_at, reply.answered_at - reply.sent_at))
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        client.close()

    with collector_paused(), LoopLag() as lag:
        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.5)  # let the heartbeats and probes settle into their rhythm
        baseline_start = time.perf_counter()
        await asyncio.sleep(baseline_s)
        baseline_end = import_start = time.perf_counter()
        client = HTTPClient(server.url)
        reply = await client.request("POST", f"/sellers/{seller_id}/fetch-products", token=importer.token, timeout=600)
        client.close()
        imported = expect(reply, 200, "the feed import").json()
        import_end = time.perf_counter()
        if imported["added"] != rows:
            raise BenchmarkFailed(f"the import added {imported['added']} of {rows} rows")
        latest = await latest_ids(pool, [importer, other])
        delivered = await wait_for_deliveries(sinks, latest, timeout=300)
        window_end = max(delivered, import_end) + 0.2  # the importer's streams catch up: still watched
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        stop_probing.set()
        await asyncio.wait_for(prober, 35)
        check_none_dropped(sinks)
        check_every_event_once_in_order(sinks, latest)
        await stop_clients(tasks)
        feed_server.close()
        pool.close()
        lags = {"baseline": lag.max_ms(baseline_start, baseline_end), "import": lag.max_ms(import_start, window_end)}

    def silences(start: float, end: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for sink in sinks:
            role = "importer" if sink.user_id == importer.id else "other"
            key = f"{role}_{sink.transport}"
            assert sink.activity is not None
            out[key] = max(out.get(key, 0.0), ms(longest_silence(sink.activity, start, end)))
        out["max"] = max(out.values())
        return out

    def health(start: float, end: float) -> dict[str, Any]:
        durations = [duration for at, duration in probes if start <= at <= end]
        # a stalled server answers one probe late rather than many: the max is the figure, not the p99
        return {**spread(durations), "over_100ms": sum(duration > 0.1 for duration in durations)}

    before = {"silence_ms": silences(baseline_start, baseline_end), "health": health(baseline_start, baseline_end)}
    during = {"silence_ms": silences(import_start, window_end), "health": health(import_start, window_end)}
    figures = {
        "import_s": round(import_end - import_start, 2),
        "import_events": latest[importer.id] - next(s.start for s in sinks if s.user_id == importer.id),
        "deliveries_done_s": round(delivered - import_start, 2),
        "baseline": before,
        "during_import": during,
        "bench_loop_lag_max_ms": lags,
    }
    silent, slow = during["silence_ms"]["max"], during["health"]["max_ms"]
    return {
        "settings": {
            "rows": rows,
            "baseline_s": baseline_s,
            "heartbeat_s": STALL_HEARTBEAT_S,
            "other_user_connections": other_connections,
            "importer_connections": importer_connections,
            "health_probe_every_ms": 20,
            "half": "SSE / WS",
        },
        "figures": figures,
        "target": {"silence_max_ms": 100, "health_max_ms": 100, "within_target": silent <= 100 and slow <= 100},
        "ratio": {
            "silence_max_during_to_before": ratio(silent, before["silence_ms"]["max"]),
            "health_max_during_to_before": ratio(slow, before["health"]["max_ms"]),
            "health_p99_during_to_before": ratio(during["health"]["p99_ms"], before["health"]["p99_ms"]),
        },
    }


async def health_cpu_us(server: Server, count: int = 1000) -> float:
    """Server CPU µs per GET /health over one sequential keep-alive connection (after a warm-up)."""
    client = HTTPClient(server.url)
    for _ in range(50):
        expect(await client.request("GET", "/health"), 200, "GET /health")
    before = server.cpu_sample()
    for _ in range(count):
        expect(await client.request("GET", "/health"), 200, "GET /health")
    seconds, _ = server.cpu_since(before)
    client.close()
    return seconds / count * 1e6


async def scenario_fanout(server: Server, quick: bool) -> dict[str, Any]:
    devices, writes, writers = (200, 200, 8) if quick else (1000, 1000, 8)
    (account,) = await accounts_for(server.url, 1)
    plan = [(account, "sse" if index % 2 == 0 else "ws") for index in range(devices)]
    sinks, tasks = await open_connections(server.url, plan)
    pool = HTTPPool(server.url, writers)
    health_us = await health_cpu_us(server)
    cpu_before = server.cpu_sample()
    start = time.perf_counter()

    async def writer(count: int) -> None:
        for _ in range(count):
            expect(await pool.request("POST", "/notifications", {"title": "fan-out"}, account.token), 201, "write")

    await asyncio.gather(*(writer(writes // writers) for _ in range(writers)))
    writes_done = time.perf_counter()
    finished = await wait_for_deliveries(sinks, {account.id: writes}, timeout=300)
    cpu, _ = server.cpu_since(cpu_before)
    check_every_event_once_in_order(sinks, {account.id: writes})
    check_none_dropped(sinks)
    await stop_clients(tasks)
    pool.close()
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
            "server_cpu_us_per_health_request": round(health_us, 2),
        },
        "target": {"server_cpu_us_per_frame": 15, "within_target": cpu / delivered * 1e6 <= 15},
        "ratio": {"cpu_per_frame_to_health_request": ratio(cpu / delivered * 1e6, health_us)},
    }


async def scenario_idle(server: Server, quick: bool) -> dict[str, Any]:
    connections, users = (1000, 10) if quick else (5000, 50)
    accounts = await accounts_for(server.url, users)
    warm, warm_tasks = await open_connections(server.url, [(accounts[0], "sse"), (accounts[0], "ws")])
    await asyncio.sleep(1)
    rss_before = server.rss_bytes()
    plan = [(accounts[index % users], "sse" if index % 2 == 0 else "ws") for index in range(connections)]
    sinks, tasks = await open_connections(server.url, plan)
    await asyncio.sleep(2)
    rss_after = server.rss_bytes()
    pool = HTTPPool(server.url, 4)
    for account in accounts:  # then every connection must still get an event
        expect(await pool.request("POST", "/notifications", {"title": "still there?"}, account.token), 201, "write")
    expected = {account.id: 1 for account in accounts}
    await wait_for_deliveries(sinks + warm, expected, timeout=60)
    check_every_event_once_in_order(sinks + warm, expected)
    check_none_dropped(sinks + warm)
    await stop_clients(tasks + warm_tasks)
    pool.close()
    growth = rss_after - rss_before
    by_transport = {t: sum(1 for s in sinks if s.transport == t) for t in ("sse", "ws")}
    return {
        "settings": {"connections": connections, "users": users, "by_transport": by_transport},
        "figures": {
            "rss_before_mib": round(rss_before / 2**20, 1),
            "rss_after_mib": round(rss_after / 2**20, 1),
            "kib_per_connection": round(growth / connections / 1024, 2),
        },
        "target": {"kib_per_connection": 20, "within_target": growth / connections / 1024 <= 20},
    }


WRITE_KINDS = ("patch", "notify", "create", "order")
EVENTS_PER_WRITE = {"patch": 2, "notify": 1, "create": 1, "order": 1}  # order: order_created


async def _write_rate(server: Server, quick: bool) -> dict[str, Any]:
    """Mixed writes by several users in parallel, each with a few keep-alive clients writing back to
    back; then GET /health with the same clients for as long (the in-run ratio)."""
    users, per_user, duration = 8, 3, (3.0 if quick else 10.0)
    accounts = await accounts_for(server.url, users)
    pool = HTTPPool(server.url, 8)
    own_products = {account.id: await create_products(pool, account, per_user, stock=10**6) for account in accounts}
    starts = await latest_ids(pool, accounts)
    counts: dict[int, dict[str, int]] = {account.id: dict.fromkeys(WRITE_KINDS, 0) for account in accounts}
    clients = [(account, number, HTTPClient(server.url)) for account in accounts for number in range(per_user)]
    times: dict[str, list[float]] = {kind: [] for kind in WRITE_KINDS}
    completions: list[float] = []

    async def writer(account: Account, number: int, client: HTTPClient, stop_at: float) -> None:
        product_id = own_products[account.id][number]
        mine = counts[account.id]
        step = number  # the clients start at different kinds
        body: dict[str, Any]
        while time.perf_counter() < stop_at:
            kind = WRITE_KINDS[step % len(WRITE_KINDS)]
            step += 1
            if kind == "patch":  # stock stays far above any threshold: 2 events
                body = {"stock": 10**6 + step}
                reply = await client.request("PATCH", f"/products/{product_id}", body, account.token)
                expect(reply, 200, "PATCH stock")
            elif kind == "notify":
                reply = await client.request("POST", "/notifications", {"title": "w"}, account.token)
                expect(reply, 201, "notify")
            elif kind == "create":
                body = {"sku": f"W-{number}-{step}", "name": "w", "price": "1.00", "stock": 100}
                reply = expect(await client.request("POST", "/products", body, account.token), 201, "POST /products")
            else:
                body = {"items": [{"product_id": product_id, "quantity": 1}]}
                reply = expect(await client.request("POST", "/orders", body, account.token), 201, "POST /orders")
            mine[kind] += 1
            times[kind].append(reply.answered_at - reply.sent_at)
            completions.append(reply.answered_at)

    # connect every client first: a connection opened while the server is busy waits to be served
    await asyncio.gather(*(client.request("GET", "/health") for _, _, client in clients))
    start = time.perf_counter()
    await asyncio.gather(*(writer(account, n, client, start + duration) for account, n, client in clients))
    elapsed = time.perf_counter() - start
    latest = await latest_ids(pool, accounts)
    for account in accounts:
        want = starts[account.id] + sum(EVENTS_PER_WRITE[k] * n for k, n in counts[account.id].items())
        if latest[account.id] != want:
            raise BenchmarkFailed(f"user {account.id}: {latest[account.id]} events recorded, {want} expected")
        await check_history_gap_free(pool, account, latest[account.id])
    health_count = 0

    async def prober(client: HTTPClient, stop_at: float) -> None:
        nonlocal health_count
        while time.perf_counter() < stop_at:
            expect(await client.request("GET", "/health"), 200, "GET /health")
            health_count += 1

    health_start = time.perf_counter()
    await asyncio.gather(*(prober(client, health_start + duration) for _, _, client in clients))
    health_elapsed = time.perf_counter() - health_start
    for _, _, client in clients:
        client.close()
    pool.close()
    writes = sum(sum(c.values()) for c in counts.values())
    by_kind = {kind: sum(c[kind] for c in counts.values()) for kind in WRITE_KINDS}
    events = sum(latest[a.id] - starts[a.id] for a in accounts)
    return {
        "writes": writes,
        "writes_per_s": round(writes / elapsed),
        "events_per_s": round(events / elapsed),
        "by_kind": by_kind,
        "http_by_kind": {kind: spread(values) for kind, values in times.items()},
        # the server answered no write for this long (a stall, with 24 clients waiting)
        "longest_without_an_answer_ms": ms(longest_silence(sorted(completions), start, start + duration)),
        "health_per_s": round(health_count / health_elapsed),
        "ratio_writes_to_health": ratio(writes / elapsed, health_count / health_elapsed),
    }


def scenario_writes(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    targets = {"sqlite": 1500, "postgres": 800}
    server_info: dict[str, Any] = {}
    for kind in ("sqlite", "postgres"):
        with running_server(kind) as server:
            figures[kind] = arun(_write_rate(server, quick))
            server_info = server.describe()
    return {
        "server": {**server_info, "database": "sqlite and postgres"},
        "settings": {
            "users": 8,
            "clients_per_user": 3,
            "duration_s": 3 if quick else 10,
            "mix": "in turn per client: PATCH stock (2 events), POST /notifications (1), POST /products (1), "
            "POST /orders (1)",
        },
        "figures": figures,
        "target": {
            kind: {"writes_per_s": target, "within_target": figures[kind]["writes_per_s"] >= target}
            for kind, target in targets.items()
        },
        "ratio": {kind: figures[kind]["ratio_writes_to_health"] for kind in figures},
    }


SCENARIOS: dict[str, Callable[[Server, bool], Coroutine[Any, Any, dict[str, Any]]]] = {
    "rest": scenario_rest,
    "latency": scenario_latency,
    "mixed": scenario_mixed,
    "stall": scenario_stall,
    "fanout": scenario_fanout,
    "idle": scenario_idle,
}
SERVER_SETTINGS: dict[str, Callable[[bool], tuple[dict[str, str], tuple[str, ...]]]] = {
    "stall": lambda quick: stall_server_settings(5000 if quick else 20_000),
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
    own = resource.getrusage(resource.RUSAGE_SELF)
    if name == "writes":
        result = scenario_writes(quick)
    else:
        env, uvicorn_args = SERVER_SETTINGS[name](quick) if name in SERVER_SETTINGS else ({}, ())
        with running_server(OPTIONS.database, env, uvicorn_args) as server:
            result = {"server": server.describe(), **arun(SCENARIOS[name](server, quick))}
    return {
        "scenario": name,
        "ok": True,
        "quick": quick,
        "machine": machine(),
        **result,
        "bench_cpu_s": round(_own_cpu() - (own.ru_utime + own.ru_stime), 1),  # the load generator's, set-up included
        "wall_s": round(time.time() - started, 1),
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=[*SCENARIOS, "writes", "all"])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--repo",
        type=Path,
        help="run the server from this checkout, with its own PATH/.venv/bin/python and cwd=PATH "
        "(e.g. `git worktree add /tmp/before <commit> && make -C /tmp/before install-serving`)",
    )
    parser.add_argument(
        "--database", choices=["sqlite", "postgres"], default="sqlite", help="for every scenario but writes (both)"
    )
    args = parser.parse_args()
    if args.repo is not None:
        OPTIONS.repo = args.repo.resolve()
        if not (OPTIONS.repo / ".venv" / "bin" / "python").exists():
            parser.error(f"{OPTIONS.repo}/.venv/bin/python is missing: run `make -C {OPTIONS.repo} install-serving`")
    OPTIONS.database = args.database
    raise_fd_limit()
    failed = False
    for name in [*SCENARIOS, "writes"] if args.scenario == "all" else [args.scenario]:
        try:
            line = run(name, args.quick)
        except (BenchmarkFailed, TimeoutError, RuntimeError) as exc:  # TimeoutError: streams that never opened
            line = {"scenario": name, "ok": False, "quick": args.quick, "error": f"{type(exc).__name__}: {exc}"}
            failed = True
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
