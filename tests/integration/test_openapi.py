"""The OpenAPI document, read as its consumers read it, from a real server.

- ``openapi-spec-validator`` accepts it;
- operation ids are the ones people write (``listProducts``), unique;
- security: what the document declares is what the server enforces, operation by operation;
- every request body has examples, and every example (request, answer, error) is valid against
  the schema it illustrates — no ``"price": "string"``;
- the documentation pages load their assets from the app itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.support.servers import ServerProcess, sqlite_database

METHODS = ("get", "put", "post", "delete", "patch")
HAND_WRITTEN = {
    "register", "createToken", "revokeToken", "getMe",
    "listSellers", "createSeller", "getSeller", "updateSeller", "deleteSeller", "fetchSellerProducts",
    "listProducts", "createProduct", "getProduct", "updateProduct", "deleteProduct", "syncProduct",
    "bulkUpdatePrices", "bulkUpdateStock", "bulkDeleteProducts", "bulkSyncProducts",
    "listOrders", "createOrder", "getOrder", "updateOrder", "fetchOrders", "processOrder", "shipOrder",
    "getSettings", "updateSettings", "replaceSettings", "sendNotification", "listEvents",
    "streamEvents", "getConnectionStats", "getHealth", "getReadiness", "getMetrics",
    "getVapidPublicKey", "createPushSubscription", "listPushSubscriptions", "deletePushSubscription", "sendTestPush",
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One server with the demo account, so that ``createToken``'s own example signs in."""
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, "DROPSYNC_DEMO": "true"}).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/schema/openapi.json", timeout=10)
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    return OAS31Validator({**schema, "components": document["components"]})


def unknown_fields(document: dict[str, Any], schema: dict[str, Any], value: Any, at: str = "") -> list[str]:
    """The keys of ``value`` its (object) schema does not declare, recursively: a stale example."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{at}{key}")
            else:
                found += unknown_fields(document, schema["properties"][key], item, f"{at}{key}.")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += unknown_fields(document, schema["items"], item, f"{at}{index}.")
    return found


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_operation_ids_are_hand_written_and_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert set(ids) >= HAND_WRITTEN, HAND_WRITTEN - set(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", op_id) for op_id in ids), ids


def test_the_security_declared_is_the_security_enforced(server: ServerProcess, document: dict[str, Any]) -> None:
    """Each operation, called without a token: a 401 exactly where the document asks for one."""
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert {(schemes[name]["in"], schemes[name]["name"]) for name in ("accessTokenQuery", "accessTokenCookie")} == {
        ("query", "access_token"),
        ("cookie", "access_token"),
    }
    secured: set[str] = set()
    public: set[str] = set()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path, method, operation in operations(document):
            url = re.sub(r"\{[^}]+\}", "1", path)
            body = first_example(operation.get("requestBody", {}))
            answer = http.request(method.upper(), url, json=body)
            declared = [name for requirement in operation.get("security", []) for name in requirement]
            (secured if declared else public).add(operation["operationId"])
            if declared:
                assert answer.status_code == 401, (operation["operationId"], answer.text)
                assert "bearerAuth" in declared
            else:
                assert answer.status_code != 401, (operation["operationId"], answer.text)
    assert public == {"getHealth", "getReadiness", "getMetrics", "register", "createToken"}
    stream = next(op for path, _, op in operations(document) if path == "/events")
    assert {name for requirement in stream["security"] for name in requirement} == {
        "bearerAuth",
        "accessTokenQuery",
        "accessTokenCookie",
    }


def first_example(request_body: dict[str, Any]) -> Any:
    for media in request_body.get("content", {}).values():
        for example in media.get("examples", {}).values():
            return example["value"]
    return None


def test_every_request_body_has_examples_valid_against_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    for _, _, operation in operations(document):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            examples = media.get("examples", {})
            assert examples, f"{operation['operationId']} has a request body without an example"
            validator = schema_validator(document, media["schema"])
            for name, example in examples.items():
                errors = [error.message for error in validator.iter_errors(example["value"])]
                assert not errors, (operation["operationId"], name, errors)
                assert not unknown_fields(document, media["schema"], example["value"]), operation["operationId"]
                checked += 1
    assert checked >= 20


def test_answers_and_errors_have_examples_valid_against_their_schemas(document: dict[str, Any]) -> None:
    checked = 0
    for _, _, operation in operations(document):
        for code, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if media_type != "application/json":
                    continue
                validator = schema_validator(document, media["schema"])
                for example in media.get("examples", {}).values():
                    errors = [error.message for error in validator.iter_errors(example["value"])]
                    assert not errors, (operation["operationId"], code, errors)
                    stale = unknown_fields(document, media["schema"], example["value"])
                    assert not stale, (operation["operationId"], code, stale)
                    checked += 1
    assert checked >= 150


def test_money_and_currency_examples_look_like_money(document: dict[str, Any]) -> None:
    """Money as decimal strings, currencies as real codes: not Swagger's generated "string"."""
    create = document["paths"]["/products"]["post"]["requestBody"]["content"]["application/json"]
    [example] = create["examples"].values()
    assert re.fullmatch(r"\d+\.\d\d", example["value"]["price"])
    assert example["value"]["currency"] == "USD"
    answer = document["paths"]["/products/{product_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    product = answer["examples"]["example"]["value"]
    assert product["price"] == "12.99"
    assert product["shopify_id"] is None  # nulls survive into the served document


def test_errors_have_one_documented_shape(document: dict[str, Any]) -> None:
    get_product = document["paths"]["/products/{product_id}"]["get"]
    for code in ("401", "404"):
        assert get_product["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    update = document["paths"]["/products/{product_id}"]["patch"]
    assert {"400", "401", "404", "412"} <= set(update["responses"])
    error = {"$ref": "#/components/schemas/Error"}
    assert unknown_fields(document, error, {"status_code": 404, "detail": "x", "extra": [{"oops": 1}]}) == []
    assert unknown_fields(document, error, {"status_code": 404, "details": "x"}) == ["details"]


def test_the_event_history_and_the_stream_are_described(document: dict[str, Any]) -> None:
    history = document["paths"]["/events/history"]["get"]["responses"]["200"]["content"]["application/json"]
    assert history["schema"] == {"$ref": "#/components/schemas/EventHistory"}
    stats = document["paths"]["/ws/stats"]["get"]["responses"]["200"]["content"]["application/json"]
    assert stats["schema"] == {"$ref": "#/components/schemas/ConnectionStats"}
    stream = document["paths"]["/events"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {parameter["name"] for parameter in stream["parameters"]} >= {"last_event_id", "Last-Event-ID", "types"}


def test_the_documentation_pages_use_only_the_apps_own_assets(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for page in ("/schema", "/schema/swagger", "/schema/redoc"):
            html = http.get(page)
            assert html.status_code == 200, page
            links = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
            assert links, page
            for link in links:
                assert link.startswith("/schema/assets/"), (page, link)
                asset = http.get(link)
                assert asset.status_code == 200, link
                assert len(asset.content) > 1000, link


def test_live_answers_match_the_documented_schemas(server: ServerProcess, document: dict[str, Any]) -> None:
    """The shapes the document states by hand (errors, history, stats) are what the server sends."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        token = http.post("/auth/token", json={"username": "demo", "password": "demo-password"}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        calls = [
            ("/events/history", "get", "200", http.get("/events/history", params={"after": 0}, headers=headers)),
            ("/ws/stats", "get", "200", http.get("/ws/stats", headers=headers)),
            ("/products/{product_id}", "get", "404", http.get("/products/999999", headers=headers)),
            ("/products/{product_id}", "get", "401", http.get("/products/1")),
            ("/products", "post", "400", http.post("/products", json={"sku": "", "price": "x"}, headers=headers)),
            (
                "/products/{product_id}",
                "patch",
                "412",
                http.patch("/products/1", json={"stock": 1}, headers={**headers, "If-Match": '"v999"'}),
            ),
        ]
    for path, method, code, answer in calls:
        assert str(answer.status_code) == code, (path, answer.text)
        schema = document["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
        errors = [error.message for error in schema_validator(document, schema).iter_errors(answer.json())]
        assert not errors, (path, code, errors)
        assert not unknown_fields(document, schema, answer.json()), (path, code)
    assert calls[0][3].json()["events"], "the demo's history is not empty"
