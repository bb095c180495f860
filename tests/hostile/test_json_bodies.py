"""Rows 2 and 3 of the hostile-input issue: JSON bodies built to cost the server time and memory.

- 60,000 unknown keys (1 MB) get a bounded list of problems ("and N more"), in a few ms, and
  leave no memory behind;
- nesting 1,000 deep is a 400 on every body route, and a ``bad_message`` error frame on the
  WebSocket (which stays open).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.hostile.support import LOOP_BOUND_S, TRACEBACK, Gauge, figure, responsiveness
from tests.support.servers import ServerProcess
from tests.support.streams import connected, open_ws

pytestmark = pytest.mark.anyio

MAX_LISTED = 20
DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000


def many_unknown_keys(count: int = 60_000) -> bytes:
    body = json.dumps({f"kk{index:07d}": 1 for index in range(count)}).encode()
    assert 950_000 < len(body) < 1_000_000
    return body


async def body_routes(http: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document that takes a JSON body, ids filled with 1."""
    document = (await http.get("/schema/openapi.json")).json()
    routes = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                concrete = path
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        concrete = concrete.replace("{" + parameter["name"] + "}", "1")
                routes.append((method.upper(), concrete))
    return routes


async def send(http: httpx.AsyncClient, method: str, path: str, body: bytes, account: Account) -> httpx.Response:
    headers = {"Content-Type": "application/json", **account.headers}
    return await http.request(method, path, content=body, headers=headers)


async def test_deep_nesting_is_a_400_on_every_body_route(
    http: httpx.AsyncClient, mallory: Account, gauge: Gauge
) -> None:
    routes = await body_routes(http)
    assert len(routes) >= 16
    seen: dict[str, int] = {}
    for method, path in routes:
        for body in (DEEP, DEEP_OBJECT):
            answer = await send(http, method, path, body, mallory)
            seen[f"{method} {path}"] = answer.status_code
    figure("row3.statuses", json.dumps(sorted(set(seen.values()))))
    assert set(seen.values()) == {400}, seen
    assert TRACEBACK not in gauge.log()


def bounded(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 400, answer.text[:500]
    assert len(answer.content) < 10_000
    extra: list[dict[str, Any]] = answer.json()["extra"]
    assert len(extra) == MAX_LISTED + 1, extra
    assert extra[-1]["message"].startswith("and ")
    assert "more" in extra[-1]["message"]
    return extra


@pytest.mark.parametrize("path", ["/auth/register", "/auth/token", "/products", "/orders"])
async def test_sixty_thousand_unknown_keys_cost_little_and_list_twenty(
    http: httpx.AsyncClient, mallory: Account, gauge: Gauge, target: ServerProcess, path: str
) -> None:
    body = many_unknown_keys()
    await send(http, "POST", path, body, mallory)  # warm-up (first-use allocations)
    rounds = 10
    before_rss = await gauge.settled_rss_mb()
    before_cpu = gauge.cpu_s()
    started = time.perf_counter()
    async with responsiveness(target.url, gauge) as loop:
        for _ in range(rounds):
            answer = await send(http, "POST", path, body, mallory)
    elapsed = time.perf_counter() - started
    cpu_per_request_ms = (gauge.cpu_s() - before_cpu) / rounds * 1000
    growth = await gauge.settled_rss_mb() - before_rss
    figure(f"row2.{path}.cpu_ms_per_request", round(cpu_per_request_ms, 1))
    figure(f"row2.{path}.rss_growth_mb_{rounds}_requests", round(growth, 1))
    figure(f"row2.{path}.response_bytes", len(answer.content))
    figure(f"row2.{path}.loop_worst_ms", round(loop.worst_s * 1000, 1))
    extra = bounded(answer)
    assert "more" in extra[-1]["message"]
    assert cpu_per_request_ms < 100, f"{cpu_per_request_ms:.0f} ms of CPU per 1 MB request ({elapsed:.1f}s)"
    assert growth < 8, f"RSS grew {growth:.1f} MB over {rounds} requests"
    assert loop.worst_s < LOOP_BOUND_S, loop


async def test_a_deep_websocket_frame_gets_a_bad_message_error_and_the_socket_stays_open(
    target: ServerProcess, mallory: Account, gauge: Gauge
) -> None:
    async with open_ws(target.url, mallory.token) as stream:
        await connected(stream)
        await stream.socket.send(DEEP.decode())
        error = await stream.next()
        assert error.type == "error", error.text
        assert error.data["code"] == "bad_message"
        await stream.socket.send('{"type": "ping"}')
        pong = await stream.next()
        assert pong.type == "pong", pong.text
    assert TRACEBACK not in gauge.log()
