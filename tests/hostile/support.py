"""Tools of the hostile suite: measure a server process from outside, and attackers it talks to.

- :class:`Gauge`: the server's RSS and CPU time (``/proc``), and its log since a mark.
- :func:`responsiveness`: ``GET /health`` on its own connection every 20 ms while an attack runs;
  the slowest answer is how long the event loop was blocked.
- :class:`Attacker`: an HTTP server on loopback that answers with whatever raw headers and body
  a test puts at a path (gzip bombs, unknown encodings).
- :func:`figure`: record a measured figure (``HOSTILE_FIGURES=path`` appends one JSON line each).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx

from tests.support.servers import ServerProcess

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The issue asks for /health within 100 ms during an attack; on a quiet machine the worst probe is
# 5-50 ms. 250 ms leaves room for a CI machine shared with other work and still fails a loop that
# is blocked (seconds, before the fixes).
LOOP_BOUND_S = 0.25
TRACEBACK = "Traceback (most recent call last)"


async def until(check: Callable[[], bool | Awaitable[bool]], within: float, every: float = 0.05) -> bool:
    """Poll ``check`` until it is true (True) or ``within`` seconds pass (False)."""
    with anyio.move_on_after(within):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return True
            await anyio.sleep(every)
    return False


def figure(name: str, value: float | str) -> None:
    """Keep a measured figure for the report (a no-op unless ``HOSTILE_FIGURES`` names a file)."""
    path = os.environ.get("HOSTILE_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, "value": value}) + "\n")


@dataclass
class Gauge:
    """Reads one server process from outside: memory, CPU and what it logged."""

    server: ServerProcess
    _log_mark: int = 0

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def cpu_s(self) -> float:
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def mark(self) -> None:
        """Later :meth:`log` calls return only what is logged after this call."""
        self._log_mark = len(self.server.output())

    def log(self) -> str:
        return self.server.output()[self._log_mark :]

    async def settled_rss_mb(self, samples: int = 5) -> float:
        """The RSS once it stops moving (the allocator gives memory back in steps)."""
        last = self.rss_mb()
        for _ in range(samples):
            await anyio.sleep(0.1)
            now = self.rss_mb()
            if abs(now - last) < 0.5:
                return now
            last = now
        return last


@dataclass
class Responsiveness:
    worst_s: float = 0.0
    probes: int = 0
    peak_rss_mb: float = 0.0
    failures: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def responsiveness(
    base_url: str, gauge: Gauge | None = None, every_s: float = 0.02
) -> AsyncIterator[Responsiveness]:
    """Probe ``GET /health`` every ``every_s`` for the duration of the block (own connection);
    with a ``gauge``, also sample the server's peak RSS meanwhile."""
    result = Responsiveness()

    async def sample(gauge: Gauge) -> None:
        while True:
            result.peak_rss_mb = max(result.peak_rss_mb, gauge.rss_mb())
            await anyio.sleep(every_s)

    async def probe(http: httpx.AsyncClient) -> None:
        while True:
            started = time.perf_counter()
            try:
                response = await http.get("/health")
                if response.status_code != 200:
                    result.failures.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                result.failures.append(type(exc).__name__)
            result.worst_s = max(result.worst_s, time.perf_counter() - started)
            result.probes += 1
            await anyio.sleep(every_s)

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http, anyio.create_task_group() as tasks:
        await http.get("/health")  # the connection is open before the attack starts
        tasks.start_soon(probe, http)
        if gauge is not None:
            tasks.start_soon(sample, gauge)
        try:
            yield result
        finally:
            tasks.cancel_scope.cancel()


# --- an attacker's HTTP server ---------------------------------------------------------------------


@dataclass
class RawRoute:
    headers: list[tuple[str, str]]
    body: bytes
    status: int = 200


class Attacker:
    """Answers each path with the raw headers and body a test gave it (no Content-Length added)."""

    def __init__(self) -> None:
        self.routes: dict[str, RawRoute] = {}
        self.url = ""
        self.hits: dict[str, int] = {}

    def serve(self, path: str, body: bytes, headers: list[tuple[str, str]], status: int = 200) -> str:
        self.routes[path] = RawRoute(headers=headers, body=body, status=status)
        return self.url + path

    @contextlib.contextmanager
    def running(self) -> Iterator[Attacker]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                route = owner.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for name, value in route.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(route.body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def gzip_bytes(chunks: Iterator[bytes]) -> bytes:
    """``chunks`` gzip-compressed (level 9), streamed so the input never sits in memory whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return b"".join(out)


def zeros(total: int, chunk: int = 1 << 22) -> Iterator[bytes]:
    block = bytes(chunk)
    for _ in range(total // chunk):
        yield block


_bombs: dict[int, bytes] = {}


def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    """``inflated`` zero bytes gzipped twice (``Content-Encoding: gzip, gzip``): 1 GiB is ~2 KB."""
    if inflated not in _bombs:
        _bombs[inflated] = gzip_bytes(iter([gzip_bytes(zeros(inflated))]))
    return _bombs[inflated]
