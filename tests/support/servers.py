"""Real servers for the tests: uvicorn in a subprocess on a loopback port, and throwaway databases.

Every wait is bounded; a server that does not come up fails the test with its own output.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("DROPSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DROPSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The key that encrypts store access tokens at rest on the test servers (a Fernet key).
STORE_TOKEN_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_unreachable_reason() -> str | None:
    """None when the test PostgreSQL answers, else a one-line reason."""

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the reason is shown
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test session; dropped afterwards."""
    name = f"dropsync_test_{secrets.token_hex(4)}"

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="dropsync-test-") as folder:
        yield f"sqlite:///{folder}/dropsync.db"


@dataclass
class ServerProcess:
    """``uvicorn app.main:create_app`` in a subprocess; ``url`` is its base URL."""

    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    # The flags we serve with (README); () runs plain `uvicorn app.main:create_app --factory`.
    serve_flags: tuple[str, ...] = (
        "--ws-per-message-deflate", "false", "--timeout-graceful-shutdown", "5",
        "--http", "app.serving:GuardedHttpToolsProtocol",
    )  # fmt: skip
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # With TLS (``--ssl-keyfile``/``--ssl-certfile`` in extra_args): the CA file that signed the
    # server's certificate; the URL is then https://localhost:<port>.
    tls_ca: str | None = None

    @property
    def url(self) -> str:
        if self.tls_ca is not None:
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {
            **os.environ,
            "DROPSYNC_DEMO": "false",
            "DROPSYNC_RATE_LIMIT": "false",
            "DROPSYNC_STORE_TOKEN_KEY": STORE_TOKEN_KEY,
            **self.env,
        }
        handle, name = tempfile.mkstemp(prefix="dropsync-server-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        command = [
            sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--no-access-log", *self.serve_flags, *self.extra_args,
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else True
                if httpx.get(f"{self.url}/health", timeout=1, verify=verify).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer /health within {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait (bounded); SIGKILL if it hangs. Returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise RuntimeError(f"server ignored SIGTERM for {timeout}s:\n{self.output()}") from None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


@dataclass
class InProcessServer:
    """The app under a real uvicorn on a loopback port, in a thread of the test process, for the
    tests that must reach into it (e.g. put its hub into shutdown while uvicorn keeps serving,
    a state a real SIGTERM holds only for a fraction of a second). ``app`` is the Litestar app."""

    app: Any
    port: int = field(default_factory=free_port)
    server: Any = None
    thread: threading.Thread | None = None
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> InProcessServer:
        import uvicorn  # noqa: PLC0415 - only the tests that need it

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws_per_message_deflate=False
        )
        self.server = uvicorn.Server(config)

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(self.server.serve())

        self.thread = threading.Thread(target=run, name="in-process-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)
        return self

    def call(self, function: Callable[[], object]) -> None:
        """Run ``function`` on the server's event loop (and wait for it)."""
        assert self.loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                function()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(10), "the server's loop did not run the call"

    def stop(self, timeout: float = 15.0) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "the in-process server did not stop"
