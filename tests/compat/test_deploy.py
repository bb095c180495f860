"""docs/deploy.md's nginx configuration, beyond the matrix: behind it the server sees the real
client (uvicorn's ``--proxy-headers``), cookie sign-in on the WebSocket works for the site's own
pages and not for another site's, and streams are not buffered."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.compat.conftest import unavailable
from tests.compat.nginx import Nginx
from tests.conftest import new_user
from tests.support.redis_server import OwnRedis
from tests.support.servers import ServerProcess, sqlite_database
from tests.support.streams import connected, notify, open_sse, open_ws

pytestmark = [pytest.mark.anyio, pytest.mark.compat, pytest.mark.redis]


@dataclass
class Proxied:
    nginx: Nginx
    servers: list[ServerProcess]


@pytest.fixture(scope="module")
def proxied(nginx: Path | None) -> Iterator[Proxied]:
    if nginx is None:
        unavailable("nginx is not installed (apt-get install -y nginx)")
    assert nginx is not None
    redis = OwnRedis().start()  # two processes: events go from one to the other through Redis
    with sqlite_database() as url:
        env = {"DROPSYNC_DATABASE_URL": url, "DROPSYNC_BROKER_URL": redis.url}
        flags = ("--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--access-log")
        servers = [ServerProcess(env=env, extra_args=flags).start() for _ in range(2)]
        front = Nginx((servers[0].port, servers[1].port)).start(nginx)
        try:
            yield Proxied(front, servers)
        finally:
            front.stop()
            for server in servers:
                server.stop()
            redis.stop()


async def test_the_server_sees_the_real_client_not_the_proxy(proxied: Proxied) -> None:
    async with httpx.AsyncClient(base_url=proxied.nginx.url, timeout=10) as http:
        for _ in range(2):  # one request to each process (round robin)
            # What nginx appends after an address a client claims: uvicorn takes the last one not
            # from a trusted proxy, so a client cannot claim another's address.
            response = await http.get("/health?probe=real-client", headers={"X-Forwarded-For": "203.0.113.7"})
            assert response.status_code == 200
    log = "".join(server.output() for server in proxied.servers)
    clients = re.findall(r'INFO:\s+([\d.]+):\d+ - "GET /health\?probe=real-client', log)
    assert clients == ["203.0.113.7", "203.0.113.7"], log[-2000:]


async def test_cookie_sign_in_works_for_the_sites_own_pages_behind_the_proxy(proxied: Proxied) -> None:
    base = proxied.nginx.url
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        user = await new_user(http, "cookie")
    cookie = {"Cookie": f"access_token={user.token}"}
    async with open_ws(base, headers={**cookie, "Origin": base}) as own:
        assert (await connected(own)).data["transport"] == "ws"
    async with open_ws(base, headers={**cookie, "Origin": "http://evil.example"}) as other:
        assert await other.wait_closed() == 4401


async def test_events_are_not_buffered_by_the_proxy(proxied: Proxied) -> None:
    base = proxied.nginx.url
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        user = await new_user(http, "unbuffered")
        async with open_sse(base, user.token) as stream:
            await connected(stream)
            sent = time.monotonic()
            await notify(http, user.headers)
            event = await stream.next(within=5)
    assert event.type == "system_notification"
    assert event.received_at - sent < 1.0
