"""Authentication remembers valid tokens for ``token_check_s``; revocation still ends access.

Two real servers on one database: a token revoked through one stops working there at once and on
the other within ``token_check_s`` (that server had remembered it). An expired token is refused at
its expiry even while remembered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.conftest import BACKENDS, new_user, server_with
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio

TOKEN_CHECK_S = 1.0


async def until_refused(http: httpx.AsyncClient, headers: dict[str, str], within_s: float) -> None:
    """Ask ``/auth/me`` every 50 ms until it answers 401 (another process holds the state: polling
    is the only way to observe it), failing after ``within_s``."""
    with anyio.fail_after(within_s):
        while True:
            if (await http.get("/auth/me", headers=headers)).status_code == 401:
                return
            await anyio.sleep(0.05)


@pytest.fixture(params=BACKENDS)
def two_servers(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {"DROPSYNC_TOKEN_CHECK_S": str(TOKEN_CHECK_S)}
    with server_with(request.param, env) as first:
        second = ServerProcess(env={**first.env}).start()
        try:
            yield first, second
        finally:
            second.stop()


async def test_a_revoked_token_ends_on_every_process_within_token_check_s(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_servers
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=10) as one,
        httpx.AsyncClient(base_url=second.url, timeout=10) as other,
    ):
        alice = await new_user(one, "revoked")
        for _ in range(3):  # the second server now remembers the token
            assert (await other.get("/auth/me", headers=alice.headers)).status_code == 200
        revoked_at = time.monotonic()
        assert (await one.delete("/auth/token", headers=alice.headers)).status_code == 204
        assert (await one.get("/auth/me", headers=alice.headers)).status_code == 401  # at once, here
        await until_refused(other, alice.headers, TOKEN_CHECK_S + 10)
        assert time.monotonic() - revoked_at <= TOKEN_CHECK_S + 2.0
        # ...and it stays refused, for REST and streams alike
        assert (await other.get("/products", headers=alice.headers)).status_code == 401
        with anyio.fail_after(10):  # a token still valid would open a stream: bounded, not hung
            assert (await other.get("/events", params={"access_token": alice.token})).status_code == 401


async def test_an_expired_token_is_refused_at_its_expiry_even_when_remembered() -> None:
    with server_with("sqlite", {"DROPSYNC_TOKEN_TTL_S": "2", "DROPSYNC_TOKEN_CHECK_S": "3600"}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            alice = await new_user(http, "expiring")
            issued_at = time.monotonic()
            assert (await http.get("/auth/me", headers=alice.headers)).status_code == 200
            await until_refused(http, alice.headers, 10)
            assert time.monotonic() - issued_at >= 1.0  # refused at its expiry, not before


async def test_me_shows_the_user_as_stored(client: httpx.AsyncClient) -> None:
    alice = await new_user(client, "me")
    first = (await client.get("/auth/me", headers=alice.headers)).json()
    again = (await client.get("/auth/me", headers=alice.headers)).json()  # remembered
    assert first == again
    assert set(first) == {"id", "username", "created_at"}
    assert first["id"] == alice.id
    assert first["username"] == alice.username
