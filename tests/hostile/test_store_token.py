"""Row 16 of the hostile-input issue: the Shopify access token is encrypted at rest with a key from
the settings, never logged or returned; without a key a store cannot be connected."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import httpx
import pytest

from tests.conftest import new_user, server_with
from tests.support.servers import REPO, STORE_TOKEN_KEY

pytestmark = pytest.mark.anyio

TOKEN = "shpat_0123456789abcdefSECRET"
STORE = {"store": {"shopify_domain": "hostile-shop.myshopify.com", "shopify_access_token": TOKEN}}


def stored_token(database_url: str) -> str | None:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT shopify_access_token FROM settings WHERE shopify_access_token IS NOT NULL")
        values = [row[0] for row in rows]
    return values[-1] if values else None


async def test_the_token_is_encrypted_at_rest_and_never_shown() -> None:
    with server_with("sqlite", {}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            account = await new_user(http, "shop")
            saved = await http.patch("/settings", json=STORE, headers=account.headers)
            assert saved.status_code == 200, saved.text
            assert saved.json()["store"]["connected"] is True
            again = await http.patch("/settings", json=STORE, headers=account.headers)  # same token: no change
            assert again.json()["updated_at"] == saved.json()["updated_at"]
            shown = await http.get("/settings", headers=account.headers)
            history = await http.get("/events/history", params={"after": 0}, headers=account.headers)
        stored = stored_token(server.env["DROPSYNC_DATABASE_URL"])
        assert stored is not None
        assert stored.startswith("fernet:")
        assert TOKEN not in stored
        assert TOKEN not in shown.text
        assert TOKEN not in history.text
        assert TOKEN not in server.output()


async def test_without_a_key_a_store_cannot_be_connected() -> None:
    with server_with("sqlite", {"DROPSYNC_STORE_TOKEN_KEY": ""}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            account = await new_user(http, "nokey")
            refused = await http.patch("/settings", json=STORE, headers=account.headers)
            assert refused.status_code == 403, refused.text
            assert "store_token_key" in refused.json()["detail"]
            local = await http.patch("/settings", json={"currency": "EUR"}, headers=account.headers)
            assert local.status_code == 200


async def test_a_token_saved_in_clear_before_is_sealed_at_start_up() -> None:
    with server_with("sqlite", {"DROPSYNC_STORE_TOKEN_KEY": ""}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            account = await new_user(http, "legacy")
        url = server.env["DROPSYNC_DATABASE_URL"]
        server.stop()
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:  # as an older version kept it
            db.execute(
                "UPDATE settings SET shopify_domain = 'hostile-shop.myshopify.com', shopify_access_token = ?"
                " WHERE user_id = ?",
                (TOKEN, account.id),
            )
        server.env = {**server.env, "DROPSYNC_STORE_TOKEN_KEY": STORE_TOKEN_KEY}
        server.start()
        stored = stored_token(url)
        assert stored is not None
        assert stored.startswith("fernet:")


def test_a_bad_key_stops_start_up_without_echoing_it() -> None:
    secret = "not-a-fernet-key-but-secret"
    started = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=REPO,
        env={"DROPSYNC_STORE_TOKEN_KEY": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = started.stdout.decode() + started.stderr.decode()
    assert started.returncode == 2, output
    assert "store_token_key" in output
    assert secret not in output
