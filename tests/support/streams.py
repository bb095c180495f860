"""Stream clients for the integration tests: SSE over httpx, WebSocket over ``websockets``, and
raw-socket clients that stop reading (slow consumers).

Both transports give the same view: a list of :class:`Message` (the envelope as sent, decoded,
with the time it arrived), filled by a background reader while the test goes on. Reading never
consumes anything the test did not ask for, and every wait is bounded: a stream that stays silent
fails the test with :class:`TimeoutError` instead of hanging it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import h11
import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response as WsResponse
from websockets.uri import parse_uri

from streams.endings import SSE_ERROR_EVENT

READ_TIMEOUT = 10.0
"""The default bound of one wait on a stream, in seconds."""

TRANSPORTS = ("sse", "ws")


class StreamEnded(Exception):
    """The stream ended before the message the test waited for."""


@dataclass(frozen=True)
class Message:
    """One message of a stream: ``text`` is the envelope exactly as it came off the wire."""

    type: str
    text: str
    envelope: dict[str, Any]
    received_at: float
    sse_id: str | None = None  # the SSE ``id:`` field, when there was one

    @property
    def id(self) -> int | None:
        value = self.envelope.get("id")
        return value if isinstance(value, int) else None

    @property
    def data(self) -> dict[str, Any]:
        data = self.envelope.get("data")
        assert isinstance(data, dict), self.envelope
        return data


def message_from(text: str, event_field: str | None = None, sse_id: str | None = None) -> Message:
    envelope = json.loads(text)
    assert isinstance(envelope, dict), text
    kind = envelope.get("type")
    assert isinstance(kind, str), text
    if event_field is not None:
        # The one exception: an `error` envelope travels as `stream_error` (not EventSource's `error`).
        expected = SSE_ERROR_EVENT if kind == "error" else kind
        assert event_field == expected, f"SSE event: {event_field!r} but envelope type {kind!r}"
    return Message(type=kind, text=text, envelope=envelope, received_at=time.monotonic(), sse_id=sse_id)


# --- SSE parsing (the WHATWG event-stream rules) -----------------------------------------------


@dataclass(frozen=True)
class SseFrame:
    """A dispatched SSE event: its fields as sent."""

    id: str | None
    event: str
    data: str


@dataclass(frozen=True)
class SseComment:
    text: str
    received_at: float


class SseParser:
    """Incremental parser: feed bytes in any chunking, get frames and comments in order.

    Lines end in CRLF, LF or CR; ``field: value`` drops one leading space; a blank line dispatches
    the event when it has data; ``:`` starts a comment; ``retry:`` sets :attr:`retry`.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.retry: int | None = None
        self.retry_before_first_event = False
        self.dispatched = 0

    @property
    def last_event_id(self) -> str | None:
        """What an EventSource sends as ``Last-Event-ID`` when it reconnects (None: no header)."""
        return self._id

    def feed(self, chunk: bytes) -> list[SseFrame | SseComment]:
        self._buffer += self._decoder.decode(chunk)
        out: list[SseFrame | SseComment] = []
        while True:
            cut = -1
            for index, char in enumerate(self._buffer):
                if char in "\r\n":
                    cut = index
                    break
            if cut == -1:
                return out
            if self._buffer[cut] == "\r":
                if cut + 1 == len(self._buffer):
                    return out  # a CR at the end: wait to see whether an LF follows
                end = cut + 2 if self._buffer[cut + 1] == "\n" else cut + 1
            else:
                end = cut + 1
            line, self._buffer = self._buffer[:cut], self._buffer[end:]
            item = self._line(line)
            if item is not None:
                out.append(item)

    def _line(self, line: str) -> SseFrame | SseComment | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            frame = SseFrame(id=self._id, event=self._event or "message", data="\n".join(self._data))
            self._data, self._event = [], ""
            self.dispatched += 1
            return frame
        if line.startswith(":"):
            return SseComment(text=line[1:].strip(), received_at=time.monotonic())
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
            if self.dispatched == 0:
                self.retry_before_first_event = True
        return None


# --- the shared reader -------------------------------------------------------------------------


class StreamReader:
    """Messages of one open stream, filled in the background; each wait bounded by ``within`` seconds."""

    transport: str

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.ended = False
        self.failure: BaseException | None = None
        self._position = 0
        self._changed = asyncio.Event()

    def _add(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    def _end(self, failure: BaseException | None = None) -> None:
        self.ended = True
        self.failure = failure
        self._changed.set()

    async def wait_until(self, ready: Callable[[], bool], within: float = READ_TIMEOUT) -> None:
        """Wait until ``ready()`` holds (checked after each arrival); TimeoutError after ``within`` seconds."""
        with anyio.fail_after(within):
            while not ready():
                self._changed.clear()
                await self._changed.wait()

    async def next(self, within: float = READ_TIMEOUT) -> Message:
        """The next message not yet read; :class:`StreamEnded` if the stream ended first."""
        await self.wait_until(lambda: self._position < len(self.messages) or self.ended, within)
        if self._position >= len(self.messages):
            raise StreamEnded(f"{self.transport} stream ended ({self.failure!r}) after {len(self.messages)} messages")
        message = self.messages[self._position]
        self._position += 1
        return message

    async def take(self, count: int, within: float = READ_TIMEOUT) -> list[Message]:
        """The next ``count`` messages (``within`` bounds the whole wait)."""
        with anyio.fail_after(within):
            return [await self.next(within) for _ in range(count)]

    async def next_of(self, kind: str, within: float = READ_TIMEOUT) -> Message:
        """Skip to the next message of type ``kind``."""
        with anyio.fail_after(within):
            while True:
                message = await self.next(within)
                if message.type == kind:
                    return message

    async def events_until(self, last_id: int, within: float = READ_TIMEOUT) -> list[Message]:
        """Recorded events (those with an id) up to and including ``last_id``; others are skipped."""
        out: list[Message] = []
        with anyio.fail_after(within):
            while not out or (out[-1].id or 0) < last_id:
                message = await self.next(within)
                if message.id is not None:
                    out.append(message)
        return out

    async def rest(self, within: float = READ_TIMEOUT) -> list[Message]:
        """Every message until the stream ends."""
        await self.wait_until(lambda: self.ended, within)
        out = self.messages[self._position :]
        self._position = len(self.messages)
        return out


class SseStream(StreamReader):
    """An open ``GET /events``: :attr:`response` has the status and headers."""

    transport = "sse"

    def __init__(self, response: httpx.Response) -> None:
        super().__init__()
        self.response = response
        self.raw = bytearray()
        self.parser = SseParser()
        self.frames: list[SseFrame] = []
        self.comments: list[SseComment] = []

    async def error_body(self, within: float = READ_TIMEOUT) -> dict[str, Any]:
        """The JSON body of a refused stream (401, 400, 503)."""
        assert self.response.status_code != 200, "the stream was accepted"
        assert self.response.headers["content-type"].startswith("application/json"), self.response.headers
        with anyio.fail_after(within):
            body = json.loads(await self.response.aread())
        assert isinstance(body, dict), body
        assert body["status_code"] == self.response.status_code, body
        return body

    async def pump(self) -> None:
        try:
            async for chunk in self.response.aiter_raw():
                self.raw += chunk
                for item in self.parser.feed(chunk):
                    if isinstance(item, SseComment):
                        self.comments.append(item)
                        self._changed.set()
                    else:
                        self.frames.append(item)
                        self._add(message_from(item.data, item.event, item.id))
        except httpx.HTTPError as exc:
            self._end(exc)
        else:
            self._end()


class WsStream(StreamReader):
    """An open ``GET /ws``: :attr:`close_code` is set once the server (or the network) closed it."""

    transport = "ws"

    def __init__(self, socket: ClientConnection) -> None:
        super().__init__()
        self.socket = socket
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def pump(self) -> None:
        try:
            while True:
                frame = await self.socket.recv()
                assert isinstance(frame, str), f"a binary frame: {frame!r}"
                self._add(message_from(frame))
        except websockets.ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd is not None else 1006
            self.close_reason = closed.rcvd.reason if closed.rcvd is not None else None
            self._end()

    async def send(self, text: str | bytes) -> None:
        with anyio.fail_after(READ_TIMEOUT):
            await self.socket.send(text)

    async def wait_closed(self, within: float = READ_TIMEOUT) -> int | None:
        await self.wait_until(lambda: self.ended, within)
        return self.close_code


def _query(token: str | None, params: Mapping[str, str | int] | None) -> dict[str, str]:
    query = {key: str(value) for key, value in (params or {}).items()}
    if token is not None:
        query.setdefault("access_token", token)
    return query


@contextlib.asynccontextmanager
async def open_sse(
    base_url: str,
    token: str | None = None,
    *,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    path: str = "/events",
) -> AsyncIterator[SseStream]:
    """``GET /events`` with the token as a bearer header (if given); reading starts at once on a 200."""
    request_headers = {"Accept": "text/event-stream", **(headers or {})}
    if token is not None:
        request_headers.setdefault("Authorization", f"Bearer {token}")
    async with httpx.AsyncClient(
        base_url=base_url, timeout=httpx.Timeout(READ_TIMEOUT, read=None), cookies=dict(cookies or {})
    ) as http:
        request = http.build_request("GET", path, params=dict(params or {}), headers=request_headers)
        with anyio.fail_after(READ_TIMEOUT):
            response = await http.send(request, stream=True)
        stream = SseStream(response)
        pump = asyncio.create_task(stream.pump()) if response.status_code == 200 else None
        try:
            yield stream
        finally:
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            with anyio.move_on_after(READ_TIMEOUT):
                await response.aclose()


def ws_url(base_url: str, path: str = "/ws", query: Mapping[str, str] | None = None) -> str:
    url = base_url.replace("http://", "ws://", 1).rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


@contextlib.asynccontextmanager
async def open_ws(
    base_url: str,
    token: str | None = None,
    *,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[WsStream]:
    """``GET /ws`` with the token as ``?access_token=`` (what browsers and React Native can do)."""
    url = ws_url(base_url, query=_query(token, params))
    socket = await websockets.connect(
        url,
        additional_headers=dict(headers or {}),
        open_timeout=READ_TIMEOUT,
        close_timeout=2,
        max_size=None,
        compression=None,
        ping_interval=None,
    )
    stream = WsStream(socket)
    pump = asyncio.create_task(stream.pump())
    try:
        yield stream
    finally:
        with anyio.move_on_after(READ_TIMEOUT):
            await socket.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


def open_stream(
    transport: str, base_url: str, token: str | None, *, params: Mapping[str, str | int] | None = None
) -> contextlib.AbstractAsyncContextManager[StreamReader]:
    """Either transport, token in the way a browser would send it (SSE: header; WS: query)."""
    if transport == "sse":
        return open_sse(base_url, token, params=params)
    if transport == "ws":
        return open_ws(base_url, token, params=params)
    raise ValueError(transport)


async def connected(stream: StreamReader, within: float = READ_TIMEOUT) -> Message:
    """Read the first message and check that it is ``connected``."""
    first = await stream.next(within)
    assert first.type == "connected", first.text
    return first


def ids(messages: Iterable[Message]) -> list[int]:
    return [message.id for message in messages if message.id is not None]


# --- writing events ----------------------------------------------------------------------------


async def notify(http: httpx.AsyncClient, headers: Mapping[str, str], title: str = "hello", message: str = "") -> None:
    """One ``system_notification`` event for the caller."""
    response = await http.post("/notifications", json={"title": title, "message": message}, headers=dict(headers))
    assert response.status_code == 201, response.text


@dataclass
class Writes:
    """When each write of :func:`write_notifications` was sent and answered (``time.monotonic()``),
    by the notification's title."""

    sent: dict[str, float] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)

    @property
    def last_answer(self) -> float:
        return max(self.answered.values())

    def lags(self, messages: Iterable[Message]) -> list[float]:
        """For each received notification: the time from its write being sent to its arrival."""
        return [m.received_at - self.sent[m.data["title"]] for m in messages if m.type == "system_notification"]


async def write_notifications(
    base_url: str, headers: Mapping[str, str], count: int, *, writers: int = 1, message: str = ""
) -> Writes:
    """Record ``count`` notifications titled ``n0``, ``n1``… from ``writers`` concurrent clients."""
    remaining = iter(range(count))
    writes = Writes()
    limits = httpx.Limits(max_connections=writers, max_keepalive_connections=writers)

    async def writer(http: httpx.AsyncClient) -> None:
        for number in remaining:
            title = f"n{number}"
            writes.sent[title] = time.monotonic()
            await notify(http, headers, title=title, message=message)
            writes.answered[title] = time.monotonic()

    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http, anyio.create_task_group() as tg:
        for _ in range(writers):
            tg.start_soon(writer, http)
    return writes


# --- raw clients that read only when told -----------------------------------------------------


@dataclass
class RawStreamClient:
    """A stream over a raw socket with a tiny receive buffer, which reads only when told.

    :meth:`open` reads up to the ``connected`` message; after that nothing is read (a stalled
    phone) until :meth:`drain` reads everything the server sent, until it closes the connection.
    """

    transport: str
    base_url: str
    token: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    receive_buffer: int = 4096
    messages: list[Message] = field(default_factory=list)
    eof: bool = False
    complete: bool = False  # SSE: the body ended properly (its last, empty chunk arrived)
    truncated: bool = False  # SSE: the body ended without its last chunk (the server gave up mid-send)
    close_code: int | None = None  # WS: the code of the server's close frame, if one arrived
    _socket: socket.socket | None = None
    _h11: h11.Connection | None = None
    _ws: ClientProtocol | None = None
    _sse: SseParser = field(default_factory=SseParser)

    async def open(self, within: float = READ_TIMEOUT) -> Message:
        """Connect, send the request and read until the ``connected`` message; returns it."""
        split = urlsplit(self.base_url)
        host, port = split.hostname or "127.0.0.1", split.port or 80
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)  # before connect: sets the window
        sock.setblocking(False)
        self._socket = sock
        loop = asyncio.get_running_loop()
        with anyio.fail_after(within):
            await loop.sock_connect(sock, (host, port))
            query = _query(self.token, self.params)
            if self.transport == "sse":
                self._h11 = h11.Connection(our_role=h11.CLIENT)
                target = "/events?" + urlencode(query)
                request = h11.Request(
                    method="GET",
                    target=target,
                    headers=[("Host", f"{host}:{port}"), ("Accept", "text/event-stream"), ("Connection", "close")],
                )
                head = (self._h11.send(request) or b"") + (self._h11.send(h11.EndOfMessage()) or b"")
                await loop.sock_sendall(sock, head)
            else:
                self._ws = ClientProtocol(parse_uri(ws_url(self.base_url, query=query)), max_size=None)
                self._ws.send_request(self._ws.connect())
                await loop.sock_sendall(sock, b"".join(self._ws.data_to_send()))
            while not self.messages:
                chunk = await loop.sock_recv(sock, 65536)
                self._feed(chunk)
                if self.eof:
                    raise StreamEnded(f"raw {self.transport} client: the server closed before `connected`")
        first = self.messages[0]
        assert first.type == "connected", first.text
        return first

    async def drain(self, within: float = READ_TIMEOUT) -> list[Message]:
        """Read everything left until the server closes the connection; returns every message.

        A WebSocket close frame is answered, as a well-behaved client does.
        """
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        with anyio.fail_after(within):
            while not self.eof:
                try:
                    chunk = await loop.sock_recv(self._socket, 1 << 20)
                except ConnectionResetError:
                    chunk = b""
                self._feed(chunk)
                if self._ws is not None and not self.eof:
                    reply = b"".join(self._ws.data_to_send())
                    if reply:
                        with contextlib.suppress(OSError):
                            await loop.sock_sendall(self._socket, reply)
        return self.messages

    async def send_text_frames(self, texts: Iterable[str]) -> None:
        """WebSocket only: send text frames, all in one write."""
        assert self._ws is not None
        assert self._socket is not None
        for text in texts:
            self._ws.send_text(text.encode())
        with anyio.fail_after(READ_TIMEOUT):
            await asyncio.get_running_loop().sock_sendall(self._socket, b"".join(self._ws.data_to_send()))

    def reset(self) -> None:
        """Vanish: close with a TCP reset, as a phone that loses its network does."""
        if self._socket is not None:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._socket.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()

    def _feed(self, chunk: bytes) -> None:
        if self._h11 is not None:
            self._feed_sse(chunk)
        else:
            self._feed_ws(chunk)

    def _feed_sse(self, chunk: bytes) -> None:
        assert self._h11 is not None
        if not chunk:
            self.eof = True
        if self.complete:
            return
        self._h11.receive_data(chunk)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                self.truncated = True  # EOF in the middle of the chunked body
                return
            if isinstance(event, h11.Response):
                assert event.status_code == 200, event
            elif isinstance(event, h11.Data):
                for item in self._sse.feed(bytes(event.data)):
                    if isinstance(item, SseFrame):
                        self.messages.append(message_from(item.data, item.event, item.id))
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
                return
            else:  # NEED_DATA, PAUSED, ConnectionClosed
                return

    def _feed_ws(self, chunk: bytes) -> None:
        assert self._ws is not None
        if chunk:
            self._ws.receive_data(chunk)
        else:
            self.eof = True
            self._ws.receive_eof()
        for event in self._ws.events_received():
            if isinstance(event, WsResponse):
                assert event.status_code == 101, event
            elif not isinstance(event, Frame):
                continue
            elif event.opcode == Opcode.TEXT:
                self.messages.append(message_from(bytes(event.data).decode()))
            elif event.opcode == Opcode.CLOSE and self._ws.close_rcvd is not None:
                self.close_code = self._ws.close_rcvd.code


async def poll_until(
    check: Callable[[], bool | Awaitable[bool]], within: float = READ_TIMEOUT, every: float = 0.05
) -> float:
    """Call ``check`` every ``every`` seconds until it is true; returns the seconds it took.
    Raises :class:`TimeoutError` after ``within`` seconds (for state that no event announces,
    e.g. a kernel socket state, a log line, a server's readiness)."""
    started = time.monotonic()
    with anyio.fail_after(within):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return time.monotonic() - started
            await anyio.sleep(every)
