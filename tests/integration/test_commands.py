"""The commands of the README, run as a user runs them: ``python -m app serve`` (what ``make run``
starts), ``python -m app tail`` and the sign-in one-liner, against real servers."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.__main__ import SIGN_IN_LINE
from tests.support.servers import REPO, ServerProcess, free_port, sqlite_database

BASH = "/bin/bash"


@dataclass
class User:
    username: str
    password: str
    token: str


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def user(server: ServerProcess) -> User:
    """A user whose first event (id 1) is ``seller_added``."""
    credentials = {"username": "tailor", "password": "tailor-password"}
    assert httpx.post(f"{server.url}/auth/register", json=credentials).status_code == 201
    token = httpx.post(f"{server.url}/auth/token", json=credentials).json()["access_token"]
    seller = httpx.post(f"{server.url}/sellers", json={"name": "Acme"}, headers={"Authorization": f"Bearer {token}"})
    assert seller.status_code == 201
    return User(credentials["username"], credentials["password"], token)


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
    )


def tail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "app", "tail", *args], env)


def test_tail_without_a_server_says_so_in_one_line() -> None:
    port = free_port()
    for transport in ("sse", "ws"):
        done = tail("--username", "demo", "--password", "x", "--transport", transport, env={"DROPSYNC_PORT": str(port)})
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"tail: no dropsync server at http://127.0.0.1:{port} ")
        done = tail("--token", "abc", "--transport", transport, env={"DROPSYNC_PORT": str(port)})
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_tail_finds_the_server_on_dropsync_port(server: ServerProcess, user: User, transport: str) -> None:
    done = tail(
        "--username", user.username, "--password", user.password, "--transport", transport,
        "--last-event-id", "0", "--max-events", "1",
        env={"DROPSYNC_PORT": str(server.port)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"id":1,"type":"seller_added"' in done.stdout


def test_tail_with_a_wrong_password_says_why_in_one_line(server: ServerProcess) -> None:
    done = tail("--username", "tailor", "--password", "wrong-password", env={"DROPSYNC_PORT": str(server.port)})
    assert done.returncode == 2
    assert done.stderr == 'tail: sign-in failed (401): {"status_code":401,"detail":"wrong username or password"}\n'


def readme_sign_in_line(base: str) -> str:
    """The README's own sign-in lines (continuations joined), pointed at ``base``."""
    readme = (REPO / "README.md").read_text()
    [block] = re.findall(r"^TOKEN=\$\(curl.*?\)\n", readme.replace("\\\n", ""), flags=re.MULTILINE | re.DOTALL)
    return str(block).replace("http://127.0.0.1:8000", base)


@pytest.mark.parametrize("source", ["README", "banner"])
def test_the_sign_in_one_liner_prints_a_token_or_the_servers_reason(
    server: ServerProcess, user: User, source: str
) -> None:
    line = (
        readme_sign_in_line(server.url)
        if source == "README"
        else SIGN_IN_LINE.format(base=server.url, username="demo", password="demo-password") + "\n"
    )
    line = line.replace('"username": "demo"', f'"username": "{user.username}"')
    signed_in = run([BASH, "-c", line.replace("demo-password", user.password) + 'echo "[$TOKEN]"'])
    assert re.fullmatch(r"\[[A-Za-z0-9_-]{20,}\]\n", signed_in.stdout), signed_in.stdout + signed_in.stderr
    refused = run([BASH, "-c", line.replace("demo-password", "wrong-password") + 'echo "[$TOKEN]"'])
    assert refused.stdout == "[]\n"
    assert refused.stderr == "sign-in failed: wrong username or password\n"
    nobody = run([BASH, "-c", line.replace(server.url, f"http://127.0.0.1:{free_port()}")])
    assert "Traceback" not in nobody.stderr
    assert nobody.stderr.endswith("sign-in failed: no answer\n")


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One server frame (unmasked, as servers send them): (opcode, payload)."""
    head = sock.recv(2, socket.MSG_WAITALL)
    assert len(head) == 2, "the server closed the connection"
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(sock.recv(2, socket.MSG_WAITALL), "big")
    elif length == 127:
        length = int.from_bytes(sock.recv(8, socket.MSG_WAITALL), "big")
    return head[0] & 0x0F, sock.recv(length, socket.MSG_WAITALL) if length else b""


def test_serve_prints_its_url_and_pings_websockets_on_the_heartbeat() -> None:
    """``python -m app serve`` (``make run``): the banner's URLs follow DROPSYNC_PORT, and a WebSocket
    peer that stops answering pings is closed with 1011 within two heartbeats."""
    port = free_port()
    with sqlite_database() as url:
        env = {"DROPSYNC_PORT": str(port), "DROPSYNC_DATABASE_URL": url, "DROPSYNC_HEARTBEAT_S": "1",
               "DROPSYNC_RATE_LIMIT": "false", "DROPSYNC_DEMO": "true", "PYTHONUNBUFFERED": "1"}  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"], cwd=REPO, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            banner = read_until(process, "API docs:")
            assert f"-m app tail --url http://127.0.0.1:{port} --username demo" in banner
            assert f"API docs: http://127.0.0.1:{port}/schema/swagger" in banner
            assert "8000" not in banner
            wait_for_health(f"http://127.0.0.1:{port}")
            token = httpx.post(
                f"http://127.0.0.1:{port}/auth/token", json={"username": "demo", "password": "demo-password"}
            ).json()["access_token"]
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    f"GET /ws?access_token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                answer = b""
                while b"\r\n\r\n" not in answer:
                    answer += sock.recv(1)
                assert answer.startswith(b"HTTP/1.1 101"), answer
                started = time.monotonic()
                frames = []
                while True:  # never answer a ping: the server must give up on us
                    opcode, payload = read_frame(sock)
                    frames.append(opcode)
                    if opcode == 0x8:
                        break
                closed_after = time.monotonic() - started
            assert 0x9 in frames, frames  # a protocol ping came
            assert int.from_bytes(payload[:2], "big") == 1011
            assert 1.0 <= closed_after <= 6.0, closed_after
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            assert line, f"serve exited: {seen}"
            seen += line
    return seen


def wait_for_health(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"no answer from {base}/health within {timeout}s")
