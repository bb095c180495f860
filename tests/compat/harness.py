"""The compatibility matrix's machinery: the clients, the servers they talk to (directly or
through nginx), the restarts, and what each client saw.

A *scenario* is one path (``direct``: the clients talk to one server; ``nginx``: to nginx in front
of two) and one restart kind (``sigterm``, ``sigkill``). Every available client runs in it at
once, each as its library's own documentation uses it (``tests/compat/clients/``,
``tests/compat/page/``), for one user whose events are written through a separate server
process (``writer``) on the same database and Redis:

1. every client connects (``?last_event_id=0``: it must receive every event from 1);
2. a few events, live;
3. a restart of the server each client is on (``nginx``: of both, one after the other, the
   rolling restart of docs/deploy.md), with events written while it is down: these reach the
   clients only by resuming from their last id;
4. a few events more, live.

Each client then must have received exactly the ids 1..N, once each, in order, each with its
type (and for SSE its ``id:`` and ``event:`` fields), no message without data, no EventSource
stopped for good, no non-200 answer; and nginx must have logged no 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

import anyio
import anyio.to_thread
import httpx
from playwright.async_api import Browser, Page

from tests.compat.nginx import Nginx
from tests.support.redis_server import OwnRedis
from tests.support.servers import REPO, ServerProcess, free_port

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
EVENTS_PER_PHASE = 4
DELIVERY_WITHIN_S = 60.0  # generous: a shared 2-core machine, a dozen clients and four processes
Transport = Literal["sse", "ws"]


@dataclass(frozen=True)
class ClientSpec:
    """One client of the matrix: ``runner`` is ``python`` (a module), ``node`` (a script),
    ``curl`` (a Python wrapper that only reads curl's output) or ``chromium`` (a page client)."""

    name: str
    transport: Transport
    runner: Literal["python", "node", "curl", "chromium"]
    target: str
    library: str  # the package and version, as docs/clients.md shows it

    @property
    def id(self) -> str:
        return self.name.lower().replace(" ", "-").replace("@", "").replace("/", "-")


CLIENTS = [
    ClientSpec("Chromium EventSource", "sse", "chromium", "eventsource", "Chromium (Debian), native"),
    ClientSpec("npm eventsource 5", "sse", "node", "eventsource5.mjs", "eventsource 5.1.5 (Node 20)"),
    ClientSpec("npm eventsource 2", "sse", "node", "eventsource2.cjs", "eventsource 2.0.2 (Node 20)"),
    ClientSpec(
        "fetch-event-source", "sse", "chromium", "fetch-event-source", "@microsoft/fetch-event-source 2.0.1 (Chromium)"
    ),
    ClientSpec("httpx-sse", "sse", "python", "tests.compat.clients.httpx_sse_client", "httpx-sse 0.4"),
    ClientSpec("sseclient-py", "sse", "python", "tests.compat.clients.sseclient_client", "sseclient-py 1.9"),
    ClientSpec("curl -N", "sse", "curl", "tests.compat.clients.curl_client", "curl (Debian)"),
    ClientSpec("Chromium WebSocket", "ws", "chromium", "websocket", "Chromium (Debian), native"),
    ClientSpec("npm ws", "ws", "node", "ws.mjs", "ws 8.23.1 (Node 20)"),
    ClientSpec("websockets", "ws", "python", "tests.compat.clients.websockets_client", "websockets (Python)"),
]


def missing_for(spec: ClientSpec, chromium_ok: bool) -> str | None:
    """Why ``spec`` cannot run on this machine (None: it can)."""
    if spec.runner == "node":
        if shutil.which("node") is None:
            return "node is not installed"
        if not (NODE_MODULES / "eventsource").exists():
            return "tests/compat/node_modules is missing (npm ci --prefix tests/compat)"
    if spec.runner == "curl" and shutil.which("curl") is None:
        return "curl is not installed"
    if spec.runner == "chromium" and not chromium_ok:
        return "/usr/bin/chromium is not installed"
    return None


# --- what a client saw ---------------------------------------------------------------------------


@dataclass
class Seen:
    """One client's reports, and the verdicts the matrix asserts."""

    spec: ClientSpec
    reports: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [report for report in self.reports if report["kind"] == kind]

    @property
    def ids(self) -> list[int]:
        return [report["id"] for report in self.of("event")]

    @property
    def duplicates(self) -> int:
        return len(self.ids) - len(set(self.ids))

    def missing(self, expected: int) -> list[int]:
        return sorted(set(range(1, expected + 1)) - set(self.ids))

    @property
    def mistyped(self) -> list[dict[str, Any]]:
        """Events whose SSE ``event:``/``id:`` fields do not match their envelope."""
        if self.spec.transport != "sse":
            return []
        return [
            report
            for report in self.of("event")
            if report["sse_event"] != report["type"] or str(report["sse_id"]) != str(report["id"])
        ]

    @property
    def connects(self) -> int:
        return sum(1 for report in self.of("message") if report["type"] == "connected")

    @property
    def farewells(self) -> list[dict[str, Any]]:
        return [report for report in self.of("message") if report["type"] == "error"]

    def summary(self, expected: int) -> dict[str, Any]:
        return {
            "client": self.spec.name,
            "expected": expected,
            "received": len(self.ids),
            "missing": len(self.missing(expected)),
            "duplicated": self.duplicates,
            "in_order": self.ids == sorted(self.ids),
            "mistyped": len(self.mistyped),
            "empty_messages": len(self.of("empty")),
            "closed_for_good": len(self.of("closed")),
            "non_200": [report["status"] for report in self.of("status")],
            "connects": self.connects,
            "farewells": [report["code"] for report in self.farewells],
            "ws_closes": [(report["code"], report["reason"]) for report in self.of("ws_close")],
        }


class Driver(Protocol):
    spec: ClientSpec

    async def start(self, api: str, token: str) -> None: ...

    async def seen(self) -> Seen: ...

    async def stop(self) -> None: ...


class ProcessDriver:
    """A client in a subprocess (Python, Node, curl) printing JSON lines, read by a thread."""

    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec
        self._seen = Seen(spec)
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, api: str, token: str) -> list[str]:
        if self.spec.runner == "node":
            return ["node", str(HERE / "clients" / self.spec.target), api, token]
        return [sys.executable, "-m", self.spec.target, api, token]

    async def start(self, api: str, token: str) -> None:
        self.process = await anyio.to_thread.run_sync(self._spawn, api, token)
        threading.Thread(target=self._read, daemon=True, name=f"compat-{self.spec.id}").start()

    def _spawn(self, api: str, token: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(api, token), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy()
        )

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                with self._lock:
                    self._seen.reports.append(report)

    async def seen(self) -> Seen:
        with self._lock:
            return Seen(self.spec, list(self._seen.reports))

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(self.process.wait)


class PageDriver:
    """A client in a Chromium page of another origin than the API (see ``page/client.js``)."""

    def __init__(self, spec: ClientSpec, browser: Browser, page_origin: str) -> None:
        self.spec = spec
        self.browser = browser
        self.page_origin = page_origin
        self.page: Page | None = None
        self.page_errors: list[str] = []

    async def start(self, api: str, token: str) -> None:
        context = await self.browser.new_context()
        self.page = await context.new_page()
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        query = f"client={self.spec.target}&api={quote(api)}&token={quote(token)}"
        await self.page.goto(f"{self.page_origin}/index.html?{query}")

    async def seen(self) -> Seen:
        assert self.page is not None
        reports = await self.page.evaluate("window.report || []")
        reports += [{"kind": "error", "error": error} for error in self.page_errors]
        return Seen(self.spec, reports)

    async def stop(self) -> None:
        if self.page is not None:
            await self.page.context.close()


# --- the page's origin -----------------------------------------------------------------------------


class _PageFiles(SimpleHTTPRequestHandler):
    """``/`` from tests/compat/page; ``/fes/`` from fetch-event-source's ES modules, whose imports
    have no ``.js`` extension (a bundler's habit) and get one here."""

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0]
        if clean.startswith("/fes/"):
            target = NODE_MODULES / "@microsoft/fetch-event-source/lib/esm" / clean.removeprefix("/fes/")
            if not target.suffix:
                target = target.with_suffix(".js")
            return str(target)
        return str(HERE / "page" / clean.lstrip("/"))

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        return "text/javascript" if str(path).endswith(".js") else super().guess_type(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def page_origin() -> Any:
    """A static server for the browser clients' page, on its own port (another origin than the API)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(_PageFiles))
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="compat-pages")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- servers ---------------------------------------------------------------------------------------


@dataclass
class Topology:
    """The writer, the server(s) the clients use, and nginx in front of two of them (``nginx``)."""

    env: dict[str, str]
    writer: ServerProcess
    servers: list[ServerProcess]
    nginx: Nginx | None = None

    @property
    def api(self) -> str:
        return self.nginx.url if self.nginx is not None else self.servers[0].url

    async def restart(self, index: int, kind: str, between: Callable[[], Any]) -> None:
        """Stop server ``index`` (SIGTERM, waiting for it to exit; or SIGKILL), run ``between``
        while it is down, start it again on the same port and wait until it is ready."""
        old = self.servers[index]
        if kind == "sigterm":
            await anyio.to_thread.run_sync(old.stop)
        else:
            assert old.process is not None
            old.process.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(old.process.wait)
        await between()
        fresh = ServerProcess(env=self.env, port=old.port)
        self.servers[index] = await anyio.to_thread.run_sync(fresh.start)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in (*self.servers, self.writer):
            with contextlib.suppress(Exception):
                server.stop()


async def start_server(server: ServerProcess) -> None:
    await anyio.to_thread.run_sync(server.start)


@contextlib.asynccontextmanager
async def topology(
    path: str, database_url: str, redis_url: str, cors_origin: str, nginx_bin: Path | None
) -> AsyncIterator[Topology]:
    env = {
        "DROPSYNC_DATABASE_URL": database_url,
        "DROPSYNC_BROKER_URL": redis_url,
        "DROPSYNC_BROKER_NAMESPACE": f"compat-{secrets.token_hex(4)}",
        "DROPSYNC_HEARTBEAT_S": "1",  # pings flow through every parser during the run
        "DROPSYNC_SSE_RETRY_MS": "500",
        "DROPSYNC_CORS_ALLOW_ORIGINS": cors_origin,
    }
    count = 2 if path == "nginx" else 1
    topo = Topology(env, ServerProcess(env=env), [ServerProcess(env=env) for _ in range(count)])
    try:
        await anyio.to_thread.run_sync(topo.writer.start)  # the first one migrates the new database
        async with anyio.create_task_group() as starting:  # the others in parallel: each takes seconds
            for server in topo.servers:
                starting.start_soon(start_server, server)
        if path == "nginx":
            assert nginx_bin is not None
            ports = (topo.servers[0].port, topo.servers[1].port)
            topo.nginx = await anyio.to_thread.run_sync(Nginx(ports).start, nginx_bin)
        yield topo
    finally:
        await anyio.to_thread.run_sync(topo.stop)


# --- a scenario ------------------------------------------------------------------------------------


@dataclass
class Run:
    """What a scenario produced: per client, what it saw; nginx's statuses; the events written."""

    path: str
    restart: str
    written: int
    seen: dict[str, Seen]
    skipped: dict[str, str]
    nginx_statuses: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step took

    def table(self) -> list[dict[str, Any]]:
        return [
            {"path": self.path, "restart": self.restart, **seen.summary(self.written)} for seen in self.seen.values()
        ]


class Writer:
    """Records the user's events through the writer process: a notification and a seller in turn."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers
        self.count = 0

    async def write(self, count: int = EVENTS_PER_PHASE) -> None:
        for _ in range(count):
            self.count += 1
            if self.count % 2:
                response = await self.http.post(
                    "/notifications", json={"title": f"n{self.count}"}, headers=self.headers
                )
            else:
                response = await self.http.post("/sellers", json={"name": f"seller {self.count}"}, headers=self.headers)
            assert response.status_code == 201, response.text


async def wait_for(
    drivers: list[Driver], done: Callable[[Seen], bool], what: str, within: float = DELIVERY_WITHIN_S
) -> None:
    deadline = time.monotonic() + within
    while True:
        seen = [await driver.seen() for driver in drivers]
        late = [s.spec.name for s in seen if not done(s)]
        if not late:
            return
        if time.monotonic() > deadline:
            details = {s.spec.name: s.summary(0) for s in seen if s.spec.name in late}
            raise AssertionError(f"{what}: still waiting for {late} after {within}s: {details}")
        await asyncio.sleep(0.2)


async def run_scenario(
    path: str,
    restart: str,
    drivers: list[Driver],
    skipped: dict[str, str],
    database_url: str,
    cors_origin: str,
    nginx_bin: Path | None,
) -> Run:
    started = time.monotonic()
    redis = OwnRedis().start()
    try:
        async with (
            topology(path, database_url, redis.url, cors_origin, nginx_bin) as topo,
            httpx.AsyncClient(base_url=topo.writer.url, timeout=30) as http,
        ):
            token = await new_token(http)
            writer = Writer(http, {"Authorization": f"Bearer {token}"})
            phases: dict[str, float] = {"servers": time.monotonic() - started}
            mark = time.monotonic()

            def phase(name: str) -> None:
                nonlocal mark
                phases[name] = round(time.monotonic() - mark, 1)
                mark = time.monotonic()

            try:
                for driver in drivers:
                    await driver.start(topo.api, token)
                await wait_for(drivers, lambda s: s.connects >= 1, "connect")
                phase("connect")
                await writer.write()
                await wait_for(drivers, lambda s: writer.count in s.ids, "live events")
                phase("live")
                for index in range(len(topo.servers)):  # nginx: one process after the other
                    await topo.restart(index, restart, writer.write)
                    phase(f"restart {index}")
                    await wait_for(drivers, lambda s: writer.count in s.ids, f"resume after restart {index}")
                    phase(f"resume {index}")
                await writer.write()
                await wait_for(drivers, lambda s: writer.count in s.ids, "live events after the restarts")
                phase("live again")
                await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
                seen = {driver.spec.name: await driver.seen() for driver in drivers}
            finally:
                for driver in drivers:
                    with contextlib.suppress(Exception):
                        await driver.stop()
            statuses = topo.nginx.statuses() if topo.nginx is not None else []
            return Run(path, restart, writer.count, seen, skipped, statuses, time.monotonic() - started, phases)
    finally:
        redis.stop()


async def new_token(http: httpx.AsyncClient) -> str:
    """A new user's access token."""
    credentials = {"username": f"compat-{secrets.token_hex(4)}", "password": secrets.token_urlsafe(12)}
    registered = await http.post("/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    issued = await http.post("/auth/token", json=credentials)
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])
