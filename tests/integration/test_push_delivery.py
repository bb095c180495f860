"""Push delivery under faults: a server killed with pushes pending, a push service that hangs,
Expo batching, and the VAPID key's life (configured, generated once, kept across restarts)."""

from __future__ import annotations

import functools
import json
import os
import signal
import statistics
from collections.abc import Iterator

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from domain.push.keys import VapidKey, private_key_text
from tests.conftest import BACKENDS, Account, new_database, new_user
from tests.support.fake_push import FakeExpo, FakeWebPushService
from tests.support.push import eventually, push_env, subscribe_browser, subscribe_phone, vapid_key
from tests.support.servers import REPO, ServerProcess, sqlite_database
from tests.support.streams import StreamReader, Writes, connected, open_sse, write_notifications

pytestmark = pytest.mark.anyio

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def web_push() -> Iterator[FakeWebPushService]:
    with FakeWebPushService().running() as service:
        yield service


@pytest.fixture
def expo() -> Iterator[FakeExpo]:
    with FakeExpo().running() as service:
        yield service


@pytest.fixture(params=BACKENDS)
def fresh_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database of each backend for one test."""
    with new_database(request.param) as url:
        yield url


async def test_pushes_pending_when_the_server_is_killed_are_all_sent_after_restart(
    fresh_database: str, web_push: FakeWebPushService, expo: FakeExpo
) -> None:
    """SIGKILL while a push service holds requests and more wait in the queue: after a restart,
    every notification reaches every subscription (a repeat is allowed, a loss is not)."""
    notifications = 20
    env = {"DROPSYNC_DATABASE_URL": fresh_database, **push_env(expo, DROPSYNC_PUSH_TIMEOUT_S="2")}
    first = ServerProcess(env=env).start()
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
            owner = await new_user(http, "killed")
            names = [(await subscribe_browser(http, owner, web_push))[0] for _ in range(2)]
            web_push.mode, web_push.hung_answer = "hang", "drop"
            web_push.hold()
            for number in range(notifications):
                await http.post("/notifications", json={"title": f"n{number}"}, headers=owner.headers)
            await eventually(lambda: web_push.hanging > 0, what="a push in flight")
    finally:
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    web_push.mode = "201"
    web_push.release_hanging()  # the killed server's requests are dropped unanswered
    assert web_push.delivered() == []
    second = ServerProcess(env=env).start()
    try:
        expected = {(name, f"n{number}") for name in names for number in range(notifications)}

        def all_delivered() -> bool:
            seen = {(push.subscription, push.message["title"]) for push in web_push.delivered()}
            return expected <= seen

        # PostgreSQL: the dead process's claims are taken over once their lease (2 x 2 s + 5 s) ends.
        await eventually(all_delivered, within=30, what="every notification after the restart")
    finally:
        second.stop()


async def test_a_hanging_push_service_delays_neither_writes_nor_streams(web_push: FakeWebPushService) -> None:
    """Measured: write latency and write-to-stream lag with a healthy push service, then with one
    that holds every request (the sends time out after 10 s). Figures: test-artifacts/push-hanging-service.json."""
    writes_per_phase = 40
    with sqlite_database() as url, FakeExpo().running() as expo:
        env = {"DROPSYNC_DATABASE_URL": url, **push_env(expo, DROPSYNC_PUSH_TIMEOUT_S="10")}
        server = ServerProcess(env=env).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                owner = await new_user(http, "busy")
                for _ in range(5):
                    await subscribe_browser(http, owner, web_push)
                phases = {}
                async with open_sse(server.url, owner.token) as stream:
                    await connected(stream)
                    for phase in ("healthy", "hanging"):
                        if phase == "hanging":
                            web_push.hold()
                            web_push.mode = "hang"
                        writes = await write_notifications(server.url, owner.headers, writes_per_phase)
                        await stream.wait_until(functools.partial(_all_arrived, writes, stream), within=10)
                        durations = [writes.answered[title] - writes.sent[title] for title in writes.sent]
                        lags = writes.lags(m for m in stream.messages if m.data.get("title") in writes.sent)
                        phases[phase] = _figures(durations, lags)
                        stream.messages.clear()
                    hanging_now = web_push.hanging
                    health = await http.get("/health")
        finally:
            web_push.release_hanging()
            server.stop()
    ARTIFACTS.mkdir(exist_ok=True)
    report = {**phases, "requests_held_by_the_push_service": hanging_now}
    (ARTIFACTS / "push-hanging-service.json").write_text(json.dumps(report, indent=2))
    assert hanging_now >= 5, report  # the dispatcher really was stuck on the service
    assert health.status_code == 200
    healthy, hanging = phases["healthy"], phases["hanging"]
    # Generous bounds that a write or a stream waiting on a push (10 s) would still break by far.
    assert hanging["write_p50_ms"] <= 3 * healthy["write_p50_ms"] + 20, report
    assert hanging["write_max_ms"] < 1000, report
    assert hanging["stream_lag_p50_ms"] <= 3 * healthy["stream_lag_p50_ms"] + 20, report
    assert hanging["stream_lag_max_ms"] < 1000, report


def _all_arrived(writes: Writes, stream: StreamReader) -> bool:
    return len(writes.lags(stream.messages)) >= len(writes.sent)


def _figures(durations: list[float], lags: list[float]) -> dict[str, float]:
    def ms(value: float) -> float:
        return round(value * 1000, 2)

    return {
        "writes": len(durations),
        "write_p50_ms": ms(statistics.median(durations)),
        "write_max_ms": ms(max(durations)),
        "stream_lag_p50_ms": ms(statistics.median(lags)),
        "stream_lag_max_ms": ms(max(lags)),
    }


async def test_expo_messages_go_in_batches_of_at_most_100(expo: FakeExpo) -> None:
    with sqlite_database() as url:
        server = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, **push_env(expo)}).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                owners: list[Account] = []
                for number in range(3):
                    owner = await new_user(http, f"phones{number}")
                    for index in range(45):
                        await subscribe_phone(http, owner, f"ExponentPushToken[u{number}d{index}]")
                    owners.append(owner)
                for owner in owners:
                    await http.post("/notifications", json={"title": "to every phone"}, headers=owner.headers)
                await eventually(lambda: len(expo.messages()) >= 135, what="135 Expo messages")
                await anyio.sleep(1)
        finally:
            server.stop()
    sizes = [len(batch) for batch in expo.requests]
    assert sum(sizes) == 135
    assert max(sizes) <= 100
    assert len(sizes) < 135 / 2  # batched, not one request per message
    assert len({message["to"] for message in expo.messages()}) == 135


async def test_the_vapid_key_is_made_once_and_kept(web_push: FakeWebPushService, expo: FakeExpo) -> None:
    with sqlite_database() as url:
        env = {"DROPSYNC_DATABASE_URL": url, **push_env(expo)}
        keys = []
        for _ in range(2):
            server = ServerProcess(env=env).start()
            try:
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                    keys.append(await vapid_key(http, await new_user(http, "keeper")))
            finally:
                server.stop()
    assert keys[0] == keys[1]


async def test_a_configured_vapid_key_is_used_and_never_shown(web_push: FakeWebPushService, expo: FakeExpo) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    secret = private_key_text(private)
    with sqlite_database() as url:
        env = {"DROPSYNC_DATABASE_URL": url, "DROPSYNC_VAPID_PRIVATE_KEY": secret, **push_env(expo)}
        server = ServerProcess(env=env).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                owner = await new_user(http, "configured")
                assert await vapid_key(http, owner) == VapidKey(private).public_key
                name, _ = await subscribe_browser(http, owner, web_push)
                await http.post("/notifications", json={"title": "signed"}, headers=owner.headers)
                await eventually(lambda: len(web_push.delivered(name)) == 1, what="a push signed by the key")
        finally:
            server.stop()
        assert secret not in server.output()
        bad = secret[:-5]  # 29 bytes: not a key
        broken = ServerProcess(env={**env, "DROPSYNC_VAPID_PRIVATE_KEY": bad})
        with pytest.raises(RuntimeError) as failed:
            broken.start(timeout=15)
        assert "DROPSYNC_VAPID_PRIVATE_KEY: not a P-256 private key" in str(failed.value)
        assert bad not in str(failed.value)
        assert "Traceback" not in str(failed.value)


async def test_without_a_vapid_subject_web_push_says_what_to_set(expo: FakeExpo) -> None:
    with sqlite_database() as url:
        env = {"DROPSYNC_DATABASE_URL": url, **push_env(expo, DROPSYNC_VAPID_SUBJECT="")}
        server = ServerProcess(env=env).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                owner = await new_user(http, "unconfigured")
                key = await http.get("/push/vapid-public-key", headers=owner.headers)
                assert key.status_code == 503
                assert "DROPSYNC_VAPID_SUBJECT" in key.json()["detail"]
                phone = await http.post(
                    "/push/subscriptions", json={"kind": "expo", "token": "ExpoPushToken[abc]"}, headers=owner.headers
                )
                assert phone.status_code == 201, phone.text  # Expo push needs no VAPID
        finally:
            server.stop()
    assert os.environ.get("DROPSYNC_VAPID_SUBJECT") is None
