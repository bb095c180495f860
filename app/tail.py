"""``tail``: follow a user's stream from a terminal, one event a line, over SSE or WebSocket.

``python -m app tail --username demo --password demo-password`` (or ``litestar --app app.main:app
tail …``). Each recorded event is printed as its JSON envelope, the same bytes the server sent;
connection events (``connected``, ``error``, ``resync_required``) are printed to stderr. When the
stream ends (server restart, dropped network) it reconnects with back-off and resumes from the
last id it printed, so nothing is skipped.

The default server is the one ``python -m app serve`` starts: ``host`` and ``port`` from
``litestar.toml`` and ``DROPSYNC_HOST``/``DROPSYNC_PORT``. When no server answers at first, it says
so in one line and exits with status 2 (retrying would only hide a wrong URL); once it has
followed the stream, a lost connection is retried forever (the server may be restarting).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from dataclasses import dataclass, replace
from typing import TextIO
from urllib.parse import urlencode

import httpx
import websockets

from app.config import ConfigError, Settings, load_settings

BACKOFF_FLOOR_S = 0.5
BACKOFF_CEILING_S = 15.0


def server_url(settings: Settings) -> str:
    """Where to reach the server ``python -m app serve`` starts with ``settings`` (a wildcard bind
    address is reached on loopback)."""
    host = "127.0.0.1" if settings.host in {"", "0.0.0.0", "::"} else settings.host  # noqa: S104 - we connect, not bind
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def default_url() -> str:
    """The URL of the server ``python -m app serve`` would start with the current settings."""
    return server_url(load_settings())


@dataclass(frozen=True)
class TailOptions:
    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    username: str | None = None
    password: str | None = None
    transport: str = "sse"
    last_event_id: int | None = None
    types: str | None = None
    max_events: int | None = None  # stop after this many recorded events (for scripts and tests)
    reconnect: bool = True


class TailError(Exception):
    """A problem that retrying will not fix (bad credentials, bad URL); the message says which."""


class Unreachable(TailError):
    """No server answered at the URL (nothing listening, wrong host or port)."""

    def __init__(self, url: str, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        where = url.rstrip("/")
        super().__init__(f"no dropsync server at {where} ({reason}); start one with `make run`, or pass --url")


class _Printer:
    def __init__(self, out: TextIO, err: TextIO, max_events: int | None) -> None:
        self.out, self.err, self.max_events = out, err, max_events
        self.last_id: int | None = None
        self.count = 0  # recorded events printed
        self.messages = 0  # messages of any kind received (the first is ``connected``)

    def handle(self, envelope: str) -> bool:
        """Print one message; False once ``max_events`` recorded events were printed."""
        message = json.loads(envelope)
        self.messages += 1
        if "id" in message:
            self.out.write(envelope + "\n")
            self.out.flush()
            self.last_id = message["id"]
            self.count += 1
        else:
            self.err.write(envelope + "\n")
            self.err.flush()
            if message.get("type") == "resync_required":
                self.last_id = message["data"]["latest_id"]
        return self.max_events is None or self.count < self.max_events


async def fetch_token(client: httpx.AsyncClient, username: str, password: str) -> str:
    try:
        response = await client.post("/auth/token", json={"username": username, "password": password})
    except httpx.TransportError as exc:
        raise Unreachable(str(client.base_url), exc) from None
    if response.status_code != 200:
        raise TailError(f"sign-in failed ({response.status_code}): {response.text}")
    return str(response.json()["access_token"])


def _query(options: TailOptions, token: str, last_id: int | None) -> str:
    params = {"access_token": token}
    if last_id is not None:
        params["last_event_id"] = str(last_id)
    if options.types:
        params["types"] = options.types
    return urlencode(params)


async def _follow_sse(options: TailOptions, token: str, printer: _Printer) -> bool:
    url = f"{options.url.rstrip('/')}/events?{_query(options, token, printer.last_id)}"
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(timeout=timeout) as client, client.stream("GET", url) as response:
        if response.status_code in {400, 401, 403}:
            raise TailError(f"the server refused the stream ({response.status_code}): {await response.aread()!r}")
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: ") and not printer.handle(line[len("data: ") :]):
                return False
    return True


async def _follow_ws(options: TailOptions, token: str, printer: _Printer) -> bool:
    base = options.url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    async with websockets.connect(f"{base}/ws?{_query(options, token, printer.last_id)}") as socket:
        try:
            async for frame in socket:
                if not printer.handle(frame if isinstance(frame, str) else frame.decode()):
                    return False
        except websockets.ConnectionClosed:
            pass
        if socket.close_code in {4400, 4401}:
            raise TailError(f"the server refused the stream (close {socket.close_code}: {socket.close_reason})")
    return True


async def tail(options: TailOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Follow the stream until ``max_events`` were printed (or forever); returns an exit status."""
    printer = _Printer(out, err, options.max_events)
    printer.last_id = options.last_event_id
    follow = _follow_ws if options.transport == "ws" else _follow_sse
    async with httpx.AsyncClient(base_url=options.url, timeout=10) as client:
        token = options.token
        if token is None:
            if not (options.username and options.password):
                raise TailError("give --token, or --username and --password")
            token = await fetch_token(client, options.username, options.password)
    attempt = 0
    while True:
        try:
            more = await follow(options, token, printer)
            attempt = 0
        except (httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
            if printer.messages == 0 and isinstance(exc, httpx.ConnectError | OSError):
                raise Unreachable(options.url, exc) from None  # never reached it: a wrong URL, or no server
            err.write(f"# connection lost: {exc}\n")
            more = True
        if not more or not options.reconnect:
            return 0
        attempt += 1
        delay = random.uniform(BACKOFF_FLOOR_S, min(BACKOFF_CEILING_S, BACKOFF_FLOOR_S * 2**attempt))  # noqa: S311
        err.write(f"# reconnecting in {delay:.1f}s, resuming after id {printer.last_id}\n")
        await asyncio.sleep(delay)


def run_tail(options: TailOptions) -> int:
    """Blocking entry point for the CLIs: exit status 0, or 2 with one line on stderr.

    An empty ``options.url`` means :func:`default_url`.
    """
    try:
        if not options.url:
            options = replace(options, url=default_url())
        return asyncio.run(tail(options))
    except (TailError, ConfigError) as exc:
        print(f"tail: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 0
