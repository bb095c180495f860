"""Shared fixtures: a real server per database backend, and fresh users to talk to it as.

``server`` is parametrized by database: every test that uses it runs on SQLite, and on the
machine's PostgreSQL too (skipped with a reason when it is unreachable, except with ``CI=true``,
where an unreachable PostgreSQL fails the run).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from domain.db import Database
from tests.support.servers import (
    IN_CI,
    ServerProcess,
    postgres_database,
    postgres_unreachable_reason,
    sqlite_database,
)

_postgres_reason: list[str | None] = []


def require_postgres() -> None:
    """Skip (or, in CI, fail) when the test PostgreSQL cannot be reached."""
    if not _postgres_reason:
        _postgres_reason.append(postgres_unreachable_reason())
    reason = _postgres_reason[0]
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parameters for a fixture that runs its tests on each database (see :func:`server_with`)."""


@contextlib.contextmanager
def new_database(backend: str) -> Iterator[str]:
    """The URL of a new, empty ``backend`` database ("sqlite" or "postgres"), gone afterwards;
    PostgreSQL skips (fails in CI) when unreachable."""
    if backend == "postgres":
        require_postgres()
        with postgres_database() as url:
            yield url
    else:
        with sqlite_database() as url:
            yield url


@contextlib.contextmanager
def server_with(backend: str, env: dict[str, str]) -> Iterator[ServerProcess]:
    """A server of its own on a fresh ``backend`` database ("sqlite" or "postgres") with extra
    ``DROPSYNC_*`` settings, for tests that need settings the shared ``server`` does not have."""
    with new_database(backend) as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, **env}).start()
        try:
            yield process
        finally:
            process.stop()


@contextlib.asynccontextmanager
async def started(url: str) -> AsyncIterator[Database]:
    """The domain's database at ``url``, started (not migrated), in this process."""
    db = Database(url)
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


@contextlib.asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    """The domain's database at ``url``, started and migrated, in this process (for tests of the
    domain itself; tests of the API talk to a server)."""
    async with started(url) as db:
        await db.migrate()
        yield db


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database of each kind (not migrated), for one test: e.g. of a migration."""
    with new_database(request.param) as url:
        yield url


async def insert(db: Database, table: str, **values: Any) -> int:
    """Insert one row as plain SQL (what an older release, or a test's seed, writes); its id."""
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    row = await db.fetch_one(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", *values.values())  # noqa: S608
    assert row is not None
    return int(row["id"])


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    async with migrated(database_url) as db:
        yield db


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with new_database(request.param) as url:
        yield url


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerProcess]:
    """One server per database for the whole session; tests isolate themselves by using new users."""
    process = ServerProcess(env={"DROPSYNC_DATABASE_URL": database_url}).start()
    yield process
    process.stop()


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield http


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_user(http: httpx.AsyncClient, prefix: str = "user") -> Account:
    username = f"{prefix}-{secrets.token_hex(5)}"
    password = secrets.token_urlsafe(12)
    registered = await http.post("/auth/register", json={"username": username, "password": password})
    assert registered.status_code == 201, registered.text
    issued = await http.post("/auth/token", json={"username": username, "password": password})
    assert issued.status_code == 200, issued.text
    return Account(registered.json()["id"], username, password, issued.json()["access_token"])


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await new_user(client, "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await new_user(client, "bob")
