"""Row 14 of the hostile-input issue: made-up bearer strings cannot get around the write limit or
grow the limiter's memory, and behind a trusted proxy each client has its own bucket (a client
that is not the proxy cannot pick its address)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import server_with
from tests.hostile.support import Gauge
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio

LIMITED = {"DROPSYNC_RATE_LIMIT": "true", "DROPSYNC_RATE_LIMIT_AUTH_PER_MINUTE": "3"}


@pytest.fixture(scope="module")
def limited() -> Iterator[ServerProcess]:
    """Rate limits on; uvicorn trusts X-Forwarded-For from 127.0.0.1 (its default, and ours)."""
    with server_with("sqlite", {**LIMITED, "DROPSYNC_RATE_LIMIT_WRITES_PER_SECOND": "5"}) as process:
        yield process


async def test_random_bearer_strings_hit_the_address_limit(limited: ServerProcess) -> None:
    gauge = Gauge(limited)
    before = gauge.rss_mb()
    statuses: list[int] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:
        for _ in range(300):
            headers = {"Authorization": f"Bearer {secrets.token_urlsafe(32)}", "X-Forwarded-For": "203.0.113.9"}
            statuses.append((await http.post("/products", json={}, headers=headers)).status_code)
    # the address's bucket: bursts of 40, refilled at 4 x 5 = 20 a second
    allowed = 40 + 20 * (time.monotonic() - started)
    assert len(statuses) - statuses.count(429) <= allowed + 5, statuses
    assert set(statuses) <= {401, 429}
    assert gauge.rss_mb() - before < 20


async def test_clients_behind_a_trusted_proxy_have_their_own_buckets(limited: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:

        async def sign_in(client: str) -> int:
            body = {"username": "nobody-here", "password": "a wrong password"}
            answer = await http.post("/auth/token", json=body, headers={"X-Forwarded-For": client})
            return answer.status_code

        first = [await sign_in("198.51.100.1") for _ in range(4)]
        other = await sign_in("198.51.100.2")
    assert first[:3] == [401, 401, 401]
    assert first[3] == 429
    assert other == 401  # another client behind the same proxy is not punished


async def test_a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address() -> None:
    with server_with("sqlite", LIMITED) as process:
        process.stop()
        process.extra_args = ("--forwarded-allow-ips", "192.0.2.1")  # some other host is the proxy
        process.start()
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as http:
            statuses = []
            for index in range(5):
                body = {"username": "nobody-here", "password": "a wrong password"}
                headers = {"X-Forwarded-For": f"198.51.100.{index}"}  # spoofed: ignored
                statuses.append((await http.post("/auth/token", json=body, headers=headers)).status_code)
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses[3:]
