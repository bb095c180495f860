"""Row 7 of the hostile-input issue: the way we serve sets a header-size limit, read deadlines,
keep-alive and a connection cap, for ``python -m app serve`` and the documented uvicorn line.

Each attack runs against a real server on a real socket: unterminated 50 MB headers, a slowloris
(one byte now and then), a trickled body, idle connections, more connections than the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx
import pytest

from tests.hostile.support import LOOP_BOUND_S, TRACEBACK, Gauge, figure, responsiveness
from tests.support.servers import REPO, ServerProcess, free_port, sqlite_database

pytestmark = pytest.mark.anyio

LIMITS = {
    "DROPSYNC_HTTP_HEAD_TIMEOUT_S": "2",
    "DROPSYNC_HTTP_BODY_TIMEOUT_S": "2",
    "DROPSYNC_HTTP_KEEP_ALIVE_S": "2",
    "DROPSYNC_MAX_CONNECTIONS": "60",
}
DOCUMENTED_LINE = (
    "--http app.serving:GuardedHttpToolsProtocol --limit-concurrency 60 --timeout-keep-alive 2 --ws-max-size 65536"
)


@dataclass
class Served:
    """A server started the way an operator would, and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()


@contextlib.contextmanager
def served(how: str, tmp: str) -> Iterator[Served]:
    port = free_port()
    with sqlite_database() as url:
        env = {**os.environ, **LIMITS, "DROPSYNC_DATABASE_URL": url, "DROPSYNC_PORT": str(port)}
        env.pop("DROPSYNC_DEMO", None)
        if how == "python -m app serve":
            command = [sys.executable, "-m", "app", "serve"]
        else:
            command = [
                sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), *DOCUMENTED_LINE.split(),
            ]  # fmt: skip
        log_path = os.path.join(tmp, f"served-{port}.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Served(process, port, log_path)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                        break
                assert process.poll() is None, server.output()
                time.sleep(0.05)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(scope="module", params=["python -m app serve", "documented uvicorn line"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(request.param, str(tmp_path_factory.mktemp("served"))) as process:
        yield process


def gauge_of(server: Served) -> Gauge:
    process = ServerProcess(env={}, port=server.port)
    process.process = server.process
    return Gauge(process)


async def raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (which it must within ``seconds``)."""
    with anyio.fail_after(seconds):
        return await reader.read(-1)


async def test_unterminated_huge_headers_are_refused_early(server: Served) -> None:
    gauge = gauge_of(server)
    before = gauge.rss_mb()
    chunk = b"X-Filler: " + b"a" * (1 << 20)
    sent: list[int] = []
    answers: list[bytes] = []

    async def attack() -> None:
        reader, writer = await raw(server.port)
        total = 0
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(50):
                writer.write(chunk)
                await writer.drain()
                total += len(chunk)
            answers.append(await closed_within(reader, 10))
        except ConnectionError:
            answers.append(b"(reset)")  # closed while we were still sending: the 431 may be lost
        finally:
            sent.append(total)
            writer.close()

    async with responsiveness(server.url, gauge) as loop, anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(attack)
    growth = loop.peak_rss_mb - before
    figure("row7.headers.peak_rss_growth_mb", round(growth, 1))
    figure("row7.headers.loop_worst_ms", round(loop.worst_s * 1000, 1))
    figure("row7.headers.max_bytes_accepted", max(sent))
    assert all(answer.startswith((b"HTTP/1.1 431", b"(reset)")) for answer in answers), answers
    assert max(sent) < 8 << 20  # cut off after the first megabytes (socket buffers), not 50 MB
    assert growth < 30
    assert loop.worst_s < LOOP_BOUND_S


async def test_a_slowloris_is_cut_off_at_the_head_deadline(server: Served) -> None:
    reader, writer = await raw(server.port)
    started = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\n")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await anyio.sleep(0.5)
                writer.write(b"X")
                await writer.drain()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(trickle)
        answer = await closed_within(reader, 8)
        tasks.cancel_scope.cancel()
    writer.close()
    figure("row7.slowloris.closed_after_s", round(time.monotonic() - started, 1))
    assert answer.startswith(b"HTTP/1.1 408"), answer


async def test_a_trickled_body_is_cut_off_at_the_body_deadline(server: Served) -> None:
    reader, writer = await raw(server.port)
    writer.write(
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    started = time.monotonic()
    answer = await closed_within(reader, 8)
    writer.close()
    assert time.monotonic() - started < 6
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer


async def test_idle_and_silent_connections_are_closed(server: Served) -> None:
    reader, writer = await raw(server.port)  # never sends a byte
    assert await closed_within(reader, 6) == b""
    writer.close()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/health")).status_code == 200
        await anyio.sleep(3)  # past the keep-alive timeout: the server closed it, httpx reconnects
        assert (await http.get("/health")).status_code == 200


async def test_more_connections_than_the_cap_get_503(server: Served) -> None:
    holders = [await raw(server.port) for _ in range(70)]
    try:
        for _, writer in holders:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # an open request head
        await anyio.sleep(0.3)
        async with httpx.AsyncClient(base_url=server.url) as http:
            answer = await http.get("/health")
        assert answer.status_code == 503
    finally:
        for _, writer in holders:
            writer.close()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/health")).status_code == 200


async def test_nothing_above_went_to_the_log_as_an_error(server: Served) -> None:
    assert TRACEBACK not in server.output()


async def test_the_settings_reach_a_server_started_with_python_m_app(tmp_path: object) -> None:
    with served("python -m app serve", str(tmp_path)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/health")).status_code == 200
