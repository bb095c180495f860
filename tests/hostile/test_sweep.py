"""The sweep of the hostile-input issue: every route of the OpenAPI document, each parameter and
body given a fixed set of bad values, as a signed-in user who owns a seller, a product and an
order. No answer may be a 5xx, and the server must log no traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import Account
from tests.hostile.support import TRACEBACK, Gauge, figure

pytestmark = pytest.mark.anyio

BAD_IDS = ["0", "-1", "2147483648", "99999999999999999999", "abc", "1.5", "%00", "1e3", "x" * 300, "%F0%9F%92%A9"]
BAD_QUERY = [*BAD_IDS, "", "%00abc", "true", "nope", "-0", "a" * 5000, "%ff%fe"]
BAD_IF_MATCH = ['"v99999999999999999999"', 'W/"v-1"', '*, "v1"', '"', "x" * 999, '"v1", garbage']
BAD_IDEMPOTENCY_KEYS: list[str | bytes] = ["x" * 300, "tab\there", b"caf\xe9", "a b"]
BAD_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b"\xff\xfe{}",
    b"[" * 1000 + b"]" * 1000,
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    json.dumps({f"unknown{index}": index for index in range(500)}).encode(),
    b'{"name": "\\u0000", "sku": "\\u0000", "price": 1e400, "title": "\\ud800"}',
    b'{"product_ids": [1e400], "items": [{"quantity": -1}], "mode": "set", "value": "NaN"}',
    b'{"price": "99999999999999999999.99", "stock": 99999999999999999999, "seller_id": 2147483648}',
    b'{"username": "a\\u0000b", "password": "\\u200b\\u200b\\u200b\\u200b\\u200b\\u200b\\u200b\\u200b"}',
    b'{"feed_url": "http://[::1/", "name": "x", "email": "@"}',
    b'{"store": {"shopify_domain": "x", "shopify_access_token": ""}, "currency": "usd"}',
]


@dataclass
class Operation:
    method: str
    path: str
    parameters: list[dict[str, Any]] = field(default_factory=list)
    has_body: bool = False

    def url(self, ids: dict[str, str], override: tuple[str, str] | None = None) -> str:
        path = self.path
        for parameter in self.parameters:
            if parameter["in"] == "path":
                name = parameter["name"]
                value = override[1] if override and override[0] == name else ids.get(name, "1")
                path = path.replace("{" + name + "}", value)
        return path


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, entries in document["paths"].items():
        for method, operation in entries.items():
            found.append(Operation(method.upper(), path, operation.get("parameters", []), "requestBody" in operation))
    return found


@dataclass
class Sweep:
    http: httpx.AsyncClient
    headers: dict[str, str]
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    sent: int = 0

    async def send(self, method: str, url: str, body: bytes | None = None, **headers: str | bytes) -> None:
        """Send one request; stream routes are closed as soon as their status is known."""
        merged = {**self.headers, "Content-Type": "application/json", **headers}
        all_headers = [
            (name.encode(), value if isinstance(value, bytes) else value.encode()) for name, value in merged.items()
        ]
        request = self.http.build_request(method, url, content=body, headers=all_headers)
        with anyio.fail_after(20):
            response = await self.http.send(request, stream=True)
            await response.aclose()
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            self.server_errors.append(
                f"{method} {url} {headers} {body[:80] if body else body!r}: {response.status_code}"
            )


async def test_every_route_with_bad_values_answers_without_a_5xx(
    http: httpx.AsyncClient, mallory: Account, gauge: Gauge
) -> None:
    seller = (await http.post("/sellers", json={"name": "s"}, headers=mallory.headers)).json()
    product = (
        await http.post("/products", json={"sku": "SW-1", "name": "p", "price": "1"}, headers=mallory.headers)
    ).json()
    order = (
        await http.post(
            "/orders", json={"items": [{"product_id": product["id"], "quantity": 1}]}, headers=mallory.headers
        )
    ).json()
    ids = {"seller_id": str(seller["id"]), "product_id": str(product["id"]), "order_id": str(order["id"])}
    document = (await http.get("/schema/openapi.json")).json()
    sweep = Sweep(http, mallory.headers)
    for operation in operations(document):
        if operation.path == "/auth/token" and operation.method == "DELETE":
            continue  # would revoke the sweep's own token
        body = b"{}" if operation.has_body else None
        for parameter in operation.parameters:
            name, where = parameter["name"], parameter["in"]
            values = {"path": BAD_IDS, "query": BAD_QUERY, "header": BAD_IF_MATCH}[where]
            for value in values:
                if where == "path":
                    await sweep.send(operation.method, operation.url(ids, (name, value)), body)
                elif where == "query":
                    await sweep.send(operation.method, f"{operation.url(ids)}?{name}={value}", body)
                else:
                    await sweep.send(operation.method, operation.url(ids), body, **{name: value})
        if operation.has_body:
            for bad in BAD_BODIES:
                await sweep.send(operation.method, operation.url(ids), bad)
        if operation.method != "GET":
            for key in BAD_IDEMPOTENCY_KEYS:
                await sweep.send(operation.method, operation.url(ids), body, **{"Idempotency-Key": key})
    figure("sweep.requests", sweep.sent)
    figure("sweep.statuses", json.dumps(dict(sorted(sweep.statuses.items()))))
    assert sweep.sent > 500
    assert sweep.server_errors == []
    assert TRACEBACK not in gauge.log()
