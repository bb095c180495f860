"""Fixtures of the hostile suite: servers on each database with the settings an attack needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import BACKENDS, Account, new_user, server_with
from tests.hostile.support import Attacker, Gauge
from tests.support.servers import ServerProcess


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    with Attacker().running() as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def target(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A server on each database that may fetch feeds from loopback (the attacker lives there)."""
    with server_with(request.param, {"DROPSYNC_FEED_ALLOW_PRIVATE_HOSTS": "true"}) as process:
        yield process


@pytest.fixture
def gauge(target: ServerProcess) -> Gauge:
    measuring = Gauge(target)
    measuring.mark()
    return measuring


@pytest.fixture
async def http(target: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.url, timeout=30) as client:
        yield client


@pytest.fixture
async def mallory(http: httpx.AsyncClient) -> Account:
    return await new_user(http, "mallory")
