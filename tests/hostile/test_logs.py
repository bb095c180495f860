"""Rows 8 and 9 of the hostile-input issue: what the log says about hostile and clumsy clients.

- A token in the query string is redacted however its name is percent-encoded, in the access
  log and the WebSocket's log line; URL passwords (Redis, the database) are never printed.
- A client's mistake (401/404/409/412/422, a body that is not UTF-8) is one line at INFO or
  less; ERROR and tracebacks are for our own faults.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import new_user, server_with
from tests.hostile.support import TRACEBACK, Gauge
from tests.support.servers import REPO, ServerProcess, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def logged() -> Iterator[ServerProcess]:
    """A server with uvicorn's access log on, at INFO."""
    with server_with("sqlite", {}) as process:
        process.stop()
        process.extra_args = ("--access-log",)
        process.start()
        yield process


@pytest.mark.parametrize("name", ["access_token", "access%5Ftoken", "%61ccess_token", "access%5ftoken"])
async def test_a_token_in_the_query_is_redacted_however_its_name_is_encoded(logged: ServerProcess, name: str) -> None:
    gauge = Gauge(logged)
    gauge.mark()
    async with httpx.AsyncClient(base_url=logged.url, timeout=10) as http:
        account = await new_user(http, "tok")
        async with http.stream("GET", f"/events?{name}={account.token}&last_event_id=0") as answer:
            assert answer.status_code == 200
        socket = await websockets.connect(
            f"ws://127.0.0.1:{logged.port}/ws?{name}={account.token}", open_timeout=5, compression=None
        )
        await socket.recv()
        await socket.close()
        await http.get("/health")  # the access log line of the stream is written by now
    log = gauge.log()
    assert "WebSocket /ws" in log
    assert account.token not in log
    assert account.token[:12] not in log


def test_url_passwords_are_never_printed(tmp_path: object) -> None:
    port = free_port()
    environment = {
        "DROPSYNC_DATABASE_URL": "postgresql://postgres:db-secret-pw@127.0.0.1:1/none",
        "DROPSYNC_BROKER_URL": "redis://:redis-secret-pw@127.0.0.1:1/0",
        "DROPSYNC_PORT": str(port),
        "PATH": "/usr/bin:/bin",
    }
    started = subprocess.run(
        [sys.executable, "-m", "app", "serve"], cwd=REPO, env=environment, capture_output=True, timeout=60, check=False
    )
    output = started.stdout.decode() + started.stderr.decode()
    assert "127.0.0.1:1" in output  # it did print the URLs (and failed to connect)
    assert "db-secret-pw" not in output
    assert "redis-secret-pw" not in output
    bad = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=REPO,
        env={**environment, "DROPSYNC_BROKER_URL": "amqp://:redis-secret-pw@x/"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "redis-secret-pw" not in bad.stdout.decode() + bad.stderr.decode()


async def test_client_errors_are_one_info_line_each(http: httpx.AsyncClient, gauge: Gauge, mallory: object) -> None:
    account = await new_user(http, "clumsy")
    product = await http.post("/products", json={"sku": "C-1", "name": "c", "price": "1"}, headers=account.headers)
    assert product.status_code == 201
    product_id = product.json()["id"]
    seller = (await http.post("/sellers", json={"name": "no feed"}, headers=account.headers)).json()
    mistakes = [
        ("GET", "/auth/me", {"Authorization": "Bearer nope"}, None, 401),
        ("GET", "/products/999999", account.headers, None, 404),
        ("POST", "/products", account.headers, b'{"sku": "C-1", "name": "c", "price": "1"}', 409),
        ("PATCH", f"/products/{product_id}", {**account.headers, "If-Match": '"v99"'}, b'{"stock": 1}', 412),
        ("POST", f"/sellers/{seller['id']}/fetch-products", account.headers, None, 422),
        ("POST", "/products", account.headers, b'{"sku": "\xff\xfe"}', 400),
        ("POST", "/orders/999999/process", account.headers, None, 404),
    ]
    for method, path, headers, body, status in mistakes:
        gauge.mark()
        answer = await http.request(method, path, headers={"Content-Type": "application/json", **headers}, content=body)
        assert answer.status_code == status, (path, answer.text)
        await http.get("/health")
        lines = [line for line in gauge.log().splitlines() if line.strip()]
        assert len(lines) <= 1, lines
        assert not any(re.search(r"\b(ERROR|CRITICAL|WARNING)\b", line) for line in lines), lines
        assert TRACEBACK not in gauge.log()
