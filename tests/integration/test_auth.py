"""/auth: sign-up, tokens, revocation, and a 401 on every protected route without a good bearer token."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Account, new_user
from tests.support.servers import ServerProcess, sqlite_database

pytestmark = pytest.mark.anyio

PROTECTED_ROUTES = [
    ("GET", "/auth/me"),
    ("DELETE", "/auth/token"),
    ("GET", "/sellers"),
    ("POST", "/sellers"),
    ("GET", "/sellers/1"),
    ("PATCH", "/sellers/1"),
    ("DELETE", "/sellers/1"),
    ("POST", "/sellers/1/fetch-products"),
    ("GET", "/products"),
    ("POST", "/products"),
    ("GET", "/products/1"),
    ("PATCH", "/products/1"),
    ("DELETE", "/products/1"),
    ("POST", "/products/1/sync"),
    ("POST", "/products/bulk/price-update"),
    ("POST", "/products/bulk/stock-update"),
    ("POST", "/products/bulk/delete"),
    ("POST", "/products/bulk/sync-shopify"),
    ("GET", "/orders"),
    ("POST", "/orders"),
    ("GET", "/orders/1"),
    ("PATCH", "/orders/1"),
    ("POST", "/orders/fetch"),
    ("POST", "/orders/1/shipment"),
    ("POST", "/orders/1/process"),
    ("GET", "/settings"),
    ("PATCH", "/settings"),
    ("PUT", "/settings"),
    ("POST", "/notifications"),
    ("GET", "/events/history"),
]


def credentials(username: str | None = None, password: str | None = None) -> dict[str, str]:
    return {
        "username": f"user-{secrets.token_hex(5)}" if username is None else username,
        "password": secrets.token_urlsafe(12) if password is None else password,
    }


def bad_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 400, response.text
    return {item["key"] for item in response.json()["extra"]}


async def request(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body: dict[str, str] | None = None if method in {"GET", "DELETE"} else {}
    return await client.request(method, path, json=body, headers=headers)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["status_code"] == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_register_returns_id_and_username(client: httpx.AsyncClient) -> None:
    body = credentials()
    response = await client.post("/auth/register", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "username"}
    assert created["username"] == body["username"]
    assert isinstance(created["id"], int)


async def test_register_a_taken_name_is_409(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/auth/register", json=credentials(alice.username, "another password"))
    assert response.status_code == 409, response.text
    # the first account is untouched: its password still works
    issued = await client.post("/auth/token", json={"username": alice.username, "password": alice.password})
    assert issued.status_code == 200


@pytest.mark.parametrize("username", ["ab", "has space", "x" * 65, "semi;colon", "ünïcode", ""])
async def test_register_a_bad_username_is_400_naming_it(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post("/auth/register", json=credentials(username, "long enough password"))
    assert bad_fields(response) == {"username"}


async def test_register_a_short_password_is_400_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json=credentials(password="short"))
    assert bad_fields(response) == {"password"}


async def test_register_names_every_bad_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json={"username": "a", "password": "short", "email": "x"})
    assert bad_fields(response) == {"username", "password", "email"}
    assert bad_fields(await client.post("/auth/register", json={})) == {"username", "password"}


async def test_token_shape(client: httpx.AsyncClient) -> None:
    body = credentials()
    assert (await client.post("/auth/register", json=body)).status_code == 201
    response = await client.post("/auth/token", json=body)
    assert response.status_code == 200, response.text
    issued = response.json()
    assert set(issued) == {"access_token", "token_type", "expires_in"}
    assert issued["token_type"] == "bearer"
    assert isinstance(issued["expires_in"], int)
    assert issued["expires_in"] > 0
    assert len(issued["access_token"]) >= 32
    assert body["password"] not in issued["access_token"]


async def test_each_token_is_new(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"username": alice.username, "password": alice.password}
    first = (await client.post("/auth/token", json=body)).json()["access_token"]
    second = (await client.post("/auth/token", json=body)).json()["access_token"]
    assert len({first, second, alice.token}) == 3


async def test_wrong_password_is_401(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/auth/token", json={"username": alice.username, "password": "wrong password"})
    assert_unauthorized(response)


async def test_unknown_user_is_401_like_a_wrong_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", json=credentials())
    assert_unauthorized(response)
    assert response.json()["detail"] == "wrong username or password"


async def test_username_is_case_insensitive(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/auth/token", json={"username": alice.username.upper(), "password": alice.password})
    assert response.status_code == 200, response.text


async def test_me(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/auth/me", headers=alice.headers)
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["id"] == alice.id
    assert me["username"] == alice.username
    assert "password" not in response.text
    assert "hash" not in response.text


async def test_the_scheme_is_case_insensitive(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/auth/me", headers={"Authorization": f"bearer {alice.token}"})
    assert response.status_code == 200, response.text


async def test_revoke_ends_that_token_only(client: httpx.AsyncClient, alice: Account) -> None:
    issued = await client.post("/auth/token", json={"username": alice.username, "password": alice.password})
    other = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    revoked = await client.delete("/auth/token", headers=alice.headers)
    assert revoked.status_code == 204, revoked.text
    assert_unauthorized(await client.get("/auth/me", headers=alice.headers))
    assert_unauthorized(await client.get("/sellers", headers=alice.headers))
    assert_unauthorized(await client.delete("/auth/token", headers=alice.headers))
    assert (await client.get("/auth/me", headers=other)).status_code == 200


async def test_a_token_belongs_to_its_user(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    assert (await client.get("/auth/me", headers=alice.headers)).json()["id"] == alice.id
    assert (await client.get("/auth/me", headers=bob.headers)).json()["id"] == bob.id


def authorization_headers(kind: str, account: Account) -> dict[str, str]:
    if kind == "missing":
        return {}
    if kind == "garbage":
        return {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}
    basic = base64.b64encode(f"{account.username}:{account.password}".encode()).decode()
    return {"Authorization": f"Basic {basic}"}


@pytest.mark.parametrize("kind", ["missing", "garbage", "basic"])
async def test_every_protected_route_is_401_without_a_good_bearer_token(
    client: httpx.AsyncClient, alice: Account, kind: str
) -> None:
    headers = authorization_headers(kind, alice)
    answers = {f"{method} {path}": await request(client, method, path, headers) for method, path in PROTECTED_ROUTES}
    wrong = {route: response.status_code for route, response in answers.items() if response.status_code != 401}
    assert wrong == {}
    for response in answers.values():
        assert_unauthorized(response)


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Token abc", "Bearerabc", "Bearer a b", "Bearer null"],
)
async def test_malformed_authorization_is_401(client: httpx.AsyncClient, authorization: str) -> None:
    assert_unauthorized(await client.get("/sellers", headers={"Authorization": authorization}))


async def test_rest_routes_take_the_token_from_the_header_only(client: httpx.AsyncClient, alice: Account) -> None:
    assert_unauthorized(await client.get("/sellers", params={"access_token": alice.token}))
    async with httpx.AsyncClient(base_url=str(client.base_url), cookies={"access_token": alice.token}) as jar:
        assert_unauthorized(await jar.get("/sellers"))


async def test_401_comes_before_validation(client: httpx.AsyncClient) -> None:
    response = await client.post("/products", json={"stock": -1, "unknown": True})
    assert_unauthorized(response)
    assert "stock" not in response.text


@pytest.fixture(scope="module")
def closed_server() -> Iterator[ServerProcess]:
    """A server with sign-up switched off, on its own SQLite database."""
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, "DROPSYNC_ALLOW_SIGNUP": "false"}).start()
        try:
            yield process
        finally:
            process.stop()


async def test_sign_up_off_is_403(closed_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=closed_server.url, timeout=10) as http:
        body = credentials()
        response = await http.post("/auth/register", json=body)
        assert response.status_code == 403, response.text
        assert response.json()["status_code"] == 403
        assert_unauthorized(await http.post("/auth/token", json=body))  # and no account was made


async def test_sign_up_on_is_the_default(client: httpx.AsyncClient) -> None:
    account = await new_user(client)
    assert (await client.get("/auth/me", headers=account.headers)).status_code == 200
