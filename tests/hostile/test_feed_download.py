"""Rows 1, 4 and 12 of the hostile-input issue: a seller feed is user input pointing at someone
else's server. Its size limit holds while decoding, odd encodings are refused, nothing blocks the
event loop, and a URL naming a non-public address in any spelling is refused."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import httpx
import pytest

from tests.conftest import Account, new_user, server_with
from tests.hostile.support import LOOP_BOUND_S, TRACEBACK, Attacker, Gauge, figure, gzip_bomb, responsiveness
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio

FEED = json.dumps([{"sku": "BOMB-1", "name": "Fine", "price": "1.00"}]).encode()
RSS_BOUND_MB = 40.0


async def fetch(http: httpx.AsyncClient, account: Account, url: str) -> httpx.Response:
    seller = await http.post("/sellers", json={"name": "Evil", "feed_url": url}, headers=account.headers)
    assert seller.status_code == 201, seller.text
    return await http.post(f"/sellers/{seller.json()['id']}/fetch-products", headers=account.headers)


async def test_a_stacked_gzip_bomb_is_refused_without_inflating_it(
    http: httpx.AsyncClient, mallory: Account, attacker: Attacker, gauge: Gauge, target: ServerProcess
) -> None:
    url = attacker.serve(
        "/bomb.json", gzip_bomb(), [("Content-Type", "application/json"), ("Content-Encoding", "gzip, gzip")]
    )
    before = await gauge.settled_rss_mb()
    async with responsiveness(target.url, gauge) as loop:
        answer = await fetch(http, mallory, url)
    after = await gauge.settled_rss_mb()
    figure("row1.stacked.status", answer.status_code)
    figure("row1.stacked.rss_growth_mb", round(after - before, 1))
    figure("row1.stacked.loop_worst_ms", round(loop.worst_s * 1000, 1))
    figure("row1.stacked.peak_rss_growth_mb", round(loop.peak_rss_mb - before, 1))
    assert answer.status_code == 422, answer.text
    assert "gzip, gzip" in answer.json()["detail"]
    assert after - before < RSS_BOUND_MB
    assert loop.peak_rss_mb - before < RSS_BOUND_MB
    assert loop.worst_s < LOOP_BOUND_S, loop
    assert TRACEBACK not in gauge.log()


async def test_a_single_gzip_bomb_stops_at_the_size_limit(
    http: httpx.AsyncClient, mallory: Account, attacker: Attacker, gauge: Gauge, target: ServerProcess
) -> None:
    once = gzip.decompress(gzip_bomb())  # 1 GiB of zeros gzipped once: ~1 MB on the wire
    url = attacker.serve("/bomb1.json", once, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
    before = await gauge.settled_rss_mb()
    async with responsiveness(target.url, gauge) as loop:
        answer = await fetch(http, mallory, url)
    after = await gauge.settled_rss_mb()
    figure("row1.single.rss_growth_mb", round(after - before, 1))
    figure("row1.single.loop_worst_ms", round(loop.worst_s * 1000, 1))
    figure("row1.single.peak_rss_growth_mb", round(loop.peak_rss_mb - before, 1))
    assert answer.status_code == 422, answer.text
    assert "over the limit" in answer.json()["detail"]
    assert after - before < RSS_BOUND_MB
    assert loop.peak_rss_mb - before < RSS_BOUND_MB
    assert loop.worst_s < LOOP_BOUND_S, loop


@pytest.mark.parametrize("encoding", ["compress", "br, gzip", "identity, gzip", "x-unknown"])
async def test_unknown_or_stacked_encodings_are_refused(
    http: httpx.AsyncClient, mallory: Account, attacker: Attacker, encoding: str
) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Encoding", encoding)]
    url = attacker.serve(f"/enc-{encoding.replace(', ', '-')}", FEED, headers)
    answer = await fetch(http, mallory, url)
    assert answer.status_code == 422, answer.text
    assert "Content-Encoding" in answer.json()["detail"]


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "identity"])
async def test_the_usual_encodings_still_import(
    http: httpx.AsyncClient, mallory: Account, attacker: Attacker, encoding: str
) -> None:
    body = {"gzip": gzip.compress(FEED), "x-gzip": gzip.compress(FEED), "deflate": zlib.compress(FEED)}.get(
        encoding, FEED
    )
    headers = [("Content-Type", "application/json"), ("Content-Encoding", encoding)]
    url = attacker.serve(f"/ok-{encoding}", body, headers)
    answer = await fetch(http, mallory, url)
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == 1


# --- addresses ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Any:
    """A server with the default: feeds on non-public addresses are refused."""
    with server_with("sqlite", {}) as process:
        yield process


@pytest.mark.parametrize(
    "host",
    [
        "[::127.0.0.1]",  # IPv4-compatible (deprecated)
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:0:7f00:1]",  # IPv4-translated (SIIT)
        "[64:ff9b::7f00:1]",  # NAT64 well-known prefix
        "[64:ff9b:1::7f00:1]",  # NAT64 local-use prefix
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[2002:a00:1::1]",  # 6to4 of 10.0.0.1
        "[fec0::1]",  # site-local (deprecated)
        "[::1]",
        "127.0.0.1",
        "169.254.169.254",
    ],
)
async def test_non_public_addresses_are_refused_in_every_spelling(guarded: ServerProcess, host: str) -> None:
    async with httpx.AsyncClient(base_url=guarded.url, timeout=10) as http:
        account = await new_user(http, "ssrf")
        answer = await fetch(http, account, f"http://{host}:9/feed.json")
    assert answer.status_code == 422, answer.text
    assert "not a public address" in answer.json()["detail"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:1:80/", "http://[127.0.0.1]:1/", "http://[::1/", "http://a:99999/"])
async def test_malformed_feed_urls_are_a_400_naming_the_field(guarded: ServerProcess, url: str) -> None:
    async with httpx.AsyncClient(base_url=guarded.url, timeout=10) as http:
        account = await new_user(http, "urls")
        created = await http.post("/sellers", json={"name": "x", "feed_url": url}, headers=account.headers)
        assert created.status_code == 400, created.text
        assert [item["key"] for item in created.json()["extra"]] == ["feed_url"]
        seller = await http.post("/sellers", json={"name": "x"}, headers=account.headers)
        patched = await http.patch(f"/sellers/{seller.json()['id']}", json={"feed_url": url}, headers=account.headers)
        assert patched.status_code == 400, patched.text
        assert [item["key"] for item in patched.json()["extra"]] == ["feed_url"]
