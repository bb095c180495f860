"""Idempotency-Key across crashes and processes: the key commits with the change.

- kill -9 before the commit: nothing is left behind, the retry runs at once (no 409);
- kill -9 after the commit, before the answer is kept: the retry never runs the write again
  (409 "in progress" for a few seconds, then 409 "applied, its answer was lost");
- two processes running the same key at once: one applies, the other is rolled back (409), and
  the retry replays the winner's answer.

The crash points come from ``DROPSYNC_TEST_CRASH_AT`` (see domain/services/idempotency.py): the
server SIGKILLs itself there, then the test restarts it on the same database.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from domain.services.idempotency import ANSWER_WAIT_MS, CRASH_ENV
from tests.conftest import BACKENDS, Account, new_user, require_postgres
from tests.support.fakes import FeedServer
from tests.support.servers import ServerProcess, postgres_database, sqlite_database

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
def database_url_of_test(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test (servers come and go on it)."""
    if request.param == "postgres":
        require_postgres()
    with postgres_database() if request.param == "postgres" else sqlite_database() as url:
        yield url


@contextlib.contextmanager
def serving(url: str, **env: str) -> Iterator[ServerProcess]:
    process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, **env}).start()
    try:
        yield process
    finally:
        process.stop()


def key() -> str:
    return f"crash-{secrets.token_hex(8)}"


async def events_of(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await http.get("/events/history", params={"after": 0, "limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def products_of(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await http.get("/products", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def post_until_killed(process: ServerProcess, account: Account, body: Any, retry_key: str) -> None:
    """POST /products with the key to a server that SIGKILLs itself on the way."""
    headers = {**account.headers, "Idempotency-Key": retry_key}
    async with httpx.AsyncClient(base_url=process.url, timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.post("/products", json=body, headers=headers)
    assert process.process is not None
    code = await anyio.to_thread.run_sync(lambda: process.process.wait(10) if process.process else None)
    assert code == -signal.SIGKILL, process.output()


async def first_user(url: str) -> Account:
    with serving(url) as process:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as http:
            return await new_user(http, "crash")


async def test_killed_before_the_commit_the_retry_runs_at_once(database_url_of_test: str) -> None:
    url = database_url_of_test
    account = await first_user(url)
    retry_key, body = key(), {"sku": "K-1", "name": "Kept once", "price": "2.50"}
    with serving(url, **{CRASH_ENV: "before-commit"}) as doomed:
        await post_until_killed(doomed, account, body, retry_key)
    with serving(url) as process:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as http:
            assert await products_of(http, account) == []  # nothing was committed
            headers = {**account.headers, "Idempotency-Key": retry_key}
            retried = await http.post("/products", json=body, headers=headers)
            assert retried.status_code == 201, retried.text  # at once: no claim left to wait out
            assert "idempotency-replayed" not in retried.headers
            again = await http.post("/products", json=body, headers=headers)
            assert (again.status_code, again.headers.get("idempotency-replayed")) == (201, "true")
            assert again.content == retried.content
            assert [p["sku"] for p in await products_of(http, account)] == ["K-1"]
            assert [(e["id"], e["type"]) for e in await events_of(http, account)] == [(1, "product_added")]


async def test_killed_after_the_commit_the_write_is_never_run_again(database_url_of_test: str) -> None:
    url = database_url_of_test
    account = await first_user(url)
    retry_key, body = key(), {"sku": "K-2", "name": "Applied once", "price": "3.00"}
    with serving(url, **{CRASH_ENV: "after-commit"}) as doomed:
        await post_until_killed(doomed, account, body, retry_key)
    with serving(url) as process:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as http:
            assert [p["sku"] for p in await products_of(http, account)] == ["K-2"]  # committed
            headers = {**account.headers, "Idempotency-Key": retry_key}
            deadline = time.monotonic() + ANSWER_WAIT_MS / 1000 + 10
            while True:
                retried = await http.post("/products", json=body, headers=headers)
                assert retried.status_code == 409, retried.text
                if "retry-after" not in retried.headers:
                    break
                # the first request might still be finishing elsewhere, for a few seconds
                assert "in progress" in retried.json()["detail"]
                assert time.monotonic() < deadline, "still 'in progress' long after the crash"
                await anyio.sleep(float(retried.headers["retry-after"]))
            assert retried.headers["idempotency-replayed"] == "true"
            assert "was applied" in retried.json()["detail"]
            # the same answer from then on, and never a second product or event
            again = await http.post("/products", json=body, headers=headers)
            assert (again.status_code, again.content) == (409, retried.content)
            assert [p["sku"] for p in await products_of(http, account)] == ["K-2"]
            assert [(e["id"], e["type"]) for e in await events_of(http, account)] == [(1, "product_added")]


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    with FeedServer().running() as server:
        yield server


async def test_two_processes_with_one_key_apply_it_once(database_url_of_test: str, feeds: FeedServer) -> None:
    url = database_url_of_test
    env = {"DROPSYNC_FEED_ALLOW_PRIVATE_HOSTS": "true", "DROPSYNC_FEED_TIMEOUT_S": "10"}
    with serving(url, **env) as one, serving(url, **env) as two:
        async with (
            httpx.AsyncClient(base_url=one.url, timeout=20) as first_http,
            httpx.AsyncClient(base_url=two.url, timeout=20) as second_http,
        ):
            account = await new_user(first_http, "twice")
            feed_path = f"/{account.username}/feed.json"
            feed_url = feeds.serve_json(feed_path, [{"sku": "T-1", "name": "Once", "price": 1}])
            seller = await first_http.post(
                "/sellers", json={"name": "S", "feed_url": feed_url}, headers=account.headers
            )
            path, headers = (
                f"/sellers/{seller.json()['id']}/fetch-products",
                {**account.headers, "Idempotency-Key": key()},
            )
            feeds.routes[feed_path].hold = True
            feeds.hold_next()
            answers: dict[str, httpx.Response] = {}

            async def held_first() -> None:
                answers["first"] = await first_http.post(path, headers=headers)

            try:
                with anyio.fail_after(20):
                    async with anyio.create_task_group() as group:
                        group.start_soon(held_first)
                        assert await anyio.to_thread.run_sync(feeds.arrived.wait, 10.0)
                        feeds.routes[feed_path].hold = False  # the other process's fetch goes through
                        answers["second"] = await second_http.post(path, headers=headers)
                        feeds.release()
            finally:
                feeds.release()
            assert answers["second"].status_code == 200, answers["second"].text
            assert answers["second"].json()["added"] == 1
            # the first one fetched too, but its transaction met the committed key: rolled back
            assert answers["first"].status_code == 409, answers["first"].text
            assert answers["first"].headers["retry-after"] == "1"
            assert feeds.hits(feed_path) == 2
            for http in (first_http, second_http):
                retried = await http.post(path, headers=headers)
                assert (retried.status_code, retried.headers.get("idempotency-replayed")) == (200, "true")
                assert retried.content == answers["second"].content
            types = [event["type"] for event in await events_of(first_http, account)]
            assert types == [
                "seller_added",
                "stock_sync_started",
                "product_added",
                "seller_products_fetched",
                "stock_sync_completed",
            ]
