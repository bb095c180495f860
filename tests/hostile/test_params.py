"""Row 4 of the hostile-input issue: values the database cannot take are the client's 400 naming
the field, not a 500 from the driver (NUL in a string on PostgreSQL, an id past ``integer``)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Account
from tests.hostile.support import TRACEBACK, Gauge

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", ["/auth/token", "/auth/register"])
@pytest.mark.parametrize("field", ["username", "password"])
async def test_a_nul_in_credentials_is_a_400_naming_the_field(
    http: httpx.AsyncClient, gauge: Gauge, path: str, field: str
) -> None:
    body = {"username": "nul-user", "password": "a long enough passphrase", field: "a\x00b-long-enough-value"}
    answer = await http.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert [item["key"] for item in answer.json()["extra"]] == [field]
    assert TRACEBACK not in gauge.log()


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999", "0", "-1", "x"])
async def test_optional_query_ids_are_bounded_like_path_ids(
    http: httpx.AsyncClient, mallory: Account, gauge: Gauge, value: str
) -> None:
    answer = await http.get("/products", params={"seller_id": value}, headers=mallory.headers)
    assert answer.status_code == 400, answer.text
    assert "seller_id" in answer.text
    path = await http.get(f"/products/{value}", headers=mallory.headers)
    assert path.status_code in {400, 404}, path.text
    assert TRACEBACK not in gauge.log()
