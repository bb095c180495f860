"""Row 10 of the hostile-input issue: accounts. A password policy (length after normalisation, a
common-password list, not the username), usernames NFKC-normalised and case-folded, and the demo
account only when asked for."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.conftest import server_with

pytestmark = pytest.mark.anyio


def fresh(prefix: str = "acct") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.mark.parametrize(
    "password",
    ["password", "12345678", "        ", "\u200b" * 8, "\u200b" * 7 + "abcdefg", "PassWord1", "qwertyuiop"],
)
async def test_weak_passwords_are_refused_naming_the_field(http: httpx.AsyncClient, password: str) -> None:
    answer = await http.post("/auth/register", json={"username": fresh(), "password": password})
    assert answer.status_code == 400, answer.text
    assert [item["key"] for item in answer.json()["extra"]] == ["password"]


async def test_the_password_must_not_be_the_username(http: httpx.AsyncClient) -> None:
    name = fresh("same")
    answer = await http.post("/auth/register", json={"username": name, "password": name.upper()})
    assert answer.status_code == 400, answer.text
    assert "username" in answer.json()["extra"][0]["message"]


async def test_usernames_are_case_folded_and_nfkc_normalised(http: httpx.AsyncClient) -> None:
    suffix = secrets.token_hex(3)
    password = "a fine long passphrase"
    first = await http.post("/auth/register", json={"username": f"Admin{suffix}", "password": password})
    assert first.status_code == 201, first.text
    assert first.json()["username"] == f"admin{suffix}"
    fullwidth = "".join(chr(ord(char) + 0xFEE0) for char in f"ADMIN{suffix}")  # fullwidth A D M ...
    for name in (f"admin{suffix}", f"ADMIN{suffix}", fullwidth):
        again = await http.post("/auth/register", json={"username": name, "password": password})
        assert again.status_code == 409, (name, again.text)
        signed_in = await http.post("/auth/token", json={"username": name, "password": password})
        assert signed_in.status_code == 200, (name, signed_in.text)


async def test_a_password_typed_in_another_normal_form_still_signs_in(http: httpx.AsyncClient) -> None:
    name = fresh("nfc")
    composed, decomposed = "caf\u00e9 au lait ok", "cafe\u0301 au lait ok"
    assert (await http.post("/auth/register", json={"username": name, "password": decomposed})).status_code == 201
    assert (await http.post("/auth/token", json={"username": name, "password": composed})).status_code == 200


async def test_there_is_no_demo_account_unless_asked_for() -> None:
    with server_with("sqlite", {}) as plain, server_with("sqlite", {"DROPSYNC_DEMO": "true"}) as demo:
        credentials = {"username": "demo", "password": "demo-password"}
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.post(f"{plain.url}/auth/token", json=credentials)).status_code == 401
            assert (await http.post(f"{demo.url}/auth/token", json=credentials)).status_code == 200


def test_the_default_settings_have_no_demo_and_make_run_asks_for_it() -> None:
    from app.config import load_settings  # noqa: PLC0415
    from tests.support.servers import REPO  # noqa: PLC0415

    assert load_settings(environ={}).demo is False
    assert "DROPSYNC_DEMO=$${DROPSYNC_DEMO:-true}" in (REPO / "Makefile").read_text()
