"""The OpenAPI document and the pages that show it, every byte served by the app itself.

- ``/schema/swagger`` (and ``/schema``): Swagger UI, from the ``swagger-ui-py`` package's copy of
  its files; ``/schema/redoc``: ReDoc 2.5.4 (MIT), vendored in ``app/openapi_assets/redoc`` (no
  PyPI package ships it without a web framework attached). Scripts, styles and favicon come from
  ``/schema/assets/…``: the pages work on a machine without internet.
- ``/schema/openapi.json``: the document.

The document is Litestar's, generated from the routes and the request/response types, then
finished once at start-up by :func:`finish_document`, which adds what types cannot say: operation
ids a person would write (``listProducts``), security (a bearer token everywhere but the public
routes; the streams also take ``access_token`` from the query or a cookie), examples from
:mod:`app.openapi_examples`, the error answers each route can give with their shape, and the
stream's parameters. Everything here is keyed by operation id, so the controllers stay about
requests, and a route added without an entry still gets a sensible id, security and error answers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
    Tag,
)
from litestar.static_files import create_static_files_router
from litestar.types import Method

from app import openapi_examples
from app.controllers.params import IF_MATCH_DESCRIPTION, IF_MATCH_MAX_BYTES

PATH = "/schema"
ASSETS = f"{PATH}/assets"
REDOC_DIR = Path(__file__).resolve().parent / "openapi_assets" / "redoc"


def swagger_ui_dir() -> Path:
    """Swagger UI's files in the installed ``swagger-ui-py`` (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make run` or `pip install -e .`")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


FAVICON = f"<link rel='icon' type='image/png' href='{ASSETS}/swagger-ui/favicon-32x32.png'>"


class LocalSwagger(SwaggerRenderPlugin):
    """Swagger UI with its script, preset, styles and favicon served from ``/schema/assets``."""

    def __init__(self) -> None:
        base = f"{ASSETS}/swagger-ui"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            path=["/", "/swagger"],
            favicon=FAVICON,
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                path="/assets/swagger-ui", directories=[swagger_ui_dir()], include_in_schema=False, name="swagger-ui"
            )
        )


class LocalRedoc(RedocRenderPlugin):
    """ReDoc from ``/schema/assets/redoc``, without Google's fonts (it falls back to system fonts)."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{ASSETS}/redoc/redoc.standalone.js", google_fonts=False, path="/redoc", favicon=FAVICON
        )

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path="/assets/redoc", directories=[REDOC_DIR], include_in_schema=False, name="redoc"
            )
        )


# --- operation ids --------------------------------------------------------------------------------

OPERATION_IDS = {
    "health": "getHealth",
    "ready": "getReadiness",
    "metrics_endpoint": "getMetrics",
    "token": "createToken",
    "revoke": "revokeToken",
    "me": "getMe",
    "fetch_products": "fetchSellerProducts",
    "bulk_price_update": "bulkUpdatePrices",
    "bulk_stock_update": "bulkUpdateStock",
    "bulk_delete": "bulkDeleteProducts",
    "bulk_sync": "bulkSyncProducts",
    "patch_settings": "updateSettings",
    "put_settings": "replaceSettings",
    "notify": "sendNotification",
    "history": "listEvents",
    "ws_stats": "getConnectionStats",
    "sse_events": "streamEvents",
}
"""Handler name -> operation id, where the handler's own name, camel-cased, would read badly."""


def operation_id(handler: HTTPRouteHandler, method: Method, path: list[Any]) -> str:
    """``list_products`` -> ``listProducts``, unless :data:`OPERATION_IDS` names it."""
    name = handler.handler_name
    if name in OPERATION_IDS:
        return OPERATION_IDS[name]
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


# --- security --------------------------------------------------------------------------------------

BEARER = "bearerAuth"
QUERY_SCHEME = "accessTokenQuery"
COOKIE_SCHEME = "accessTokenCookie"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        description="A token from `POST /auth/token`, sent as `Authorization: Bearer <token>`.",
    ),
    QUERY_SCHEME: SecurityScheme(
        type="apiKey",
        name="access_token",
        security_scheme_in="query",
        description="The streams only (`/events`, `/ws`, `/ws/stats`): EventSource and browser WebSockets "
        "cannot set headers. Redacted from the server's logs.",
    ),
    COOKIE_SCHEME: SecurityScheme(
        type="apiKey",
        name="access_token",
        security_scheme_in="cookie",
        description="The streams only, and only for a request from the same origin.",
    ),
}
PUBLIC = frozenset({"getHealth", "getReadiness", "getMetrics", "register", "createToken"})
STREAMS = frozenset({"streamEvents", "getConnectionStats"})


def security_for(operation_id: str) -> list[SecurityRequirement] | None:
    if operation_id in PUBLIC:
        return None
    if operation_id in STREAMS:
        return [{BEARER: []}, {QUERY_SCHEME: []}, {COOKIE_SCHEME: []}]
    return [{BEARER: []}]


# --- shared schemas and answers -------------------------------------------------------------------


def literal(value: Any) -> msgspec.Raw:
    """An example value exactly as written: Litestar drops ``None`` from the dicts of the document
    it serves, which would turn ``"shopify_id": null`` into a missing field. Raw JSON is kept."""
    return msgspec.Raw(msgspec.json.encode(value))


def ref(name: str) -> Reference:
    return Reference(ref=f"#/components/schemas/{name}")


INTEGER, STRING = OpenAPIType.INTEGER, OpenAPIType.STRING
SCHEMAS: dict[str, Schema] = {
    "FieldError": Schema(
        type=OpenAPIType.OBJECT,
        description="One bad field of a request: `key` is its path (`items.17.stock`, `rows.0.price`).",
        properties={
            "message": Schema(type=STRING),
            "key": Schema(type=STRING),
            "source": Schema(type=STRING, enum=["body", "query", "path", "header", "cookie"]),
        },
        required=["message", "key"],
    ),
    "Error": Schema(
        type=OpenAPIType.OBJECT,
        description="Every error answer. `extra` lists every bad field of a 400 (and each missing item of a "
        "bulk 404); a refused request changed nothing.",
        properties={
            "status_code": Schema(type=INTEGER),
            "detail": Schema(type=STRING, description="what went wrong, and what to do about it"),
            "extra": Schema(
                one_of=[Schema(type=OpenAPIType.ARRAY, items=ref("FieldError")), Schema(type=OpenAPIType.OBJECT)]
            ),
        },
        required=["status_code", "detail"],
        examples=[{"status_code": 404, "detail": "product 999 not found"}],
    ),
    "Event": Schema(
        type=OpenAPIType.OBJECT,
        description="A recorded event: the same bytes on SSE, WebSocket and in the history. `id` is the "
        "user's own sequence (1, 2, 3 … no gaps, commit order); `data` depends on `type` (see docs/api.md).",
        properties={
            "id": Schema(type=INTEGER, minimum=1),
            "type": Schema(type=STRING, examples=["product_updated"]),
            "data": Schema(type=OpenAPIType.OBJECT),
            "timestamp": Schema(type=INTEGER, description="epoch milliseconds (UTC) of the change"),
            "user_id": Schema(type=INTEGER),
        },
        required=["id", "type", "data", "timestamp", "user_id"],
        examples=[literal(openapi_examples.EVENT)],
    ),
    "EventHistory": Schema(
        type=OpenAPIType.OBJECT,
        properties={
            "events": Schema(type=OpenAPIType.ARRAY, items=ref("Event")),
            "latest_id": Schema(type=INTEGER, description="the newest recorded id (0: none yet)"),
            "oldest_id": Schema(
                one_of=[Schema(type=INTEGER), Schema(type=OpenAPIType.NULL)],
                description="the oldest id still kept (older ones were pruned); null when none",
            ),
        },
        required=["events", "latest_id", "oldest_id"],
    ),
    "ConnectionStats": Schema(
        type=OpenAPIType.OBJECT,
        properties={
            "connections": Schema(
                type=OpenAPIType.ARRAY,
                description="your own open connections on the process that answers",
                items=Schema(
                    type=OpenAPIType.OBJECT,
                    properties={
                        "connection_id": Schema(type=STRING),
                        "transport": Schema(type=STRING, enum=["sse", "ws"]),
                        "connected_at": Schema(type=STRING, description="ISO 8601 UTC"),
                        "last_event_id": Schema(
                            one_of=[Schema(type=INTEGER), Schema(type=OpenAPIType.NULL)],
                            description="the last event id sent on it; null before the first",
                        ),
                        "queued": Schema(type=INTEGER, description="events waiting to be sent"),
                    },
                    required=["connection_id", "transport", "connected_at", "last_event_id", "queued"],
                ),
            ),
            "totals": Schema(
                type=OpenAPIType.OBJECT,
                description="over every process sharing the broker: numbers only",
                properties={
                    "connections": Schema(type=INTEGER),
                    "by_transport": Schema(
                        type=OpenAPIType.OBJECT,
                        properties={"sse": Schema(type=INTEGER), "ws": Schema(type=INTEGER)},
                        required=["sse", "ws"],
                    ),
                    "users_online": Schema(type=INTEGER),
                },
                required=["connections", "by_transport", "users_online"],
            ),
        },
        required=["connections", "totals"],
    ),
}
"""Shapes that no Python type in the handlers states (the error body, the event envelope, the stats)."""

FALLBACK_SCHEMAS = {"listEvents": "EventHistory", "getConnectionStats": "ConnectionStats"}
"""The answers' schemas where the handler's type cannot say it (the history is spliced from stored JSON)."""

ERRORS = {
    "400": "The request is malformed: `extra` names every bad field.",
    "401": "No token, or a revoked or expired one.",
    "404": "No such object, or it is another user's.",
    "409": "A conflict: a taken key, an illegal status move or short stock; or an `Idempotency-Key` whose first "
    "request is still running (retry after `Retry-After`) or was applied but its answer was lost "
    "(`Idempotency-Replayed: true`).",
    "412": "`If-Match` names an older version: reload and apply the change again (the answer's `ETag` is "
    "the current one).",
    "413": "The body is over the size limit (1 MiB by default).",
    "422": "The request is well formed but cannot be done (a bad feed, an `Idempotency-Key` reused for another "
    "request).",
    "429": "Too many requests: wait for `Retry-After` seconds.",
    "502": "The store or the feed refused or could not be reached.",
    "504": "The store or the feed did not answer in time.",
}
EXTRA_ERRORS: dict[str, tuple[str, ...]] = {
    "register": ("409",),
    "createProduct": ("409",),
    "updateProduct": ("409",),
    "createOrder": ("409",),
    "updateOrder": ("409",),
    "processOrder": ("409",),
    "shipOrder": ("409", "502", "504"),
    "syncProduct": ("502", "504"),
    "bulkSyncProducts": ("502", "504"),
    "fetchOrders": ("502", "504"),
    "fetchSellerProducts": ("422", "502", "504"),
    "bulkUpdateStock": ("409",),
}
"""Error answers particular to an operation, beyond those every operation of its kind can give."""

ERROR_EXAMPLES = {
    "400": {
        "status_code": 400,
        "detail": "Validation failed for POST /products",
        "extra": [{"message": 'must be a decimal amount such as "99.99"', "key": "price", "source": "body"}],
    },
    "401": {"status_code": 401, "detail": "missing bearer token"},
    "404": {"status_code": 404, "detail": "product 999 not found"},
    "409": {"status_code": 409, "detail": "sku ACME-MUG is taken"},
    "412": {
        "status_code": 412,
        "detail": "product 1 has changed since you read it (it is now at version 2): reload it and apply your "
        "change again",
    },
    "413": {"status_code": 413, "detail": "Request Entity Too Large"},
    "422": {"status_code": 422, "detail": "seller 1 has no feed_url: set one with PATCH /sellers/1"},
    "429": {"status_code": 429, "detail": "too many requests: retry after 1 s"},
    "502": {"status_code": 502, "detail": "the store refused the request: 401 Unauthorized"},
    "504": {"status_code": 504, "detail": "the store did not answer within 10.0 s"},
}

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def error_codes(operation_id: str, method: str, path: str, operation: Operation) -> list[str]:
    codes = ["400"] if operation.request_body is not None or operation.parameters else []
    if operation_id not in PUBLIC:
        codes.append("401")
    if "{" in path or operation_id.startswith("bulk"):
        codes.append("404")
    if operation.request_body is not None:
        codes.append("413")
    if any(parameter_name(p) == "If-Match" for p in operation.parameters or ()):
        codes.append("412")
    if method in WRITE_METHODS and operation_id not in STREAMS:
        codes.append("429")
        if not path.startswith("/auth"):
            codes.append("422")  # an Idempotency-Key reused for another request
            codes.append("409")  # an Idempotency-Key whose first request is running, or was applied
    codes.extend(EXTRA_ERRORS.get(operation_id, ()))
    return sorted(set(codes))


def error_response(code: str) -> OpenAPIResponse:
    example = ERROR_EXAMPLES[code]
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if code == "429":
        headers = {"Retry-After": OpenAPIHeader(schema=Schema(type=INTEGER), description="seconds")}
    return OpenAPIResponse(
        description=ERRORS[code],
        headers=headers,
        content={
            "application/json": OpenAPIMediaType(
                schema=ref("Error"), examples={"error": Example(value=literal(example))}
            )
        },
    )


def parameter_name(parameter: Parameter | Reference) -> str | None:
    return parameter.name if isinstance(parameter, Parameter) else None


CONDITIONAL_WRITES = frozenset({"updateProduct", "updateSeller", "updateOrder", "processOrder", "shipOrder"})
"""The operations that honour ``If-Match`` (read by :func:`app.controllers.params.if_match_versions`)."""
IF_MATCH = Parameter(
    name="If-Match",
    param_in="header",
    required=False,
    description=IF_MATCH_DESCRIPTION,
    schema=Schema(type=STRING, max_length=IF_MATCH_MAX_BYTES, description=IF_MATCH_DESCRIPTION),
)
IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    description="Make a retry safe: a fresh key per change (a UUID, 1-255 visible ASCII characters). The "
    "first answer is kept 24 hours and replayed (`Idempotency-Replayed: true`) for the same request with the "
    "same key, with no second change or event.",
    schema=Schema(type=STRING, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    # No example: Swagger UI would fill it into every "Try it out", and a key reused for another
    # request is a 422.
)
STREAM_PARAMETERS = [
    Parameter(
        name="last_event_id",
        param_in="query",
        required=False,
        description="Resume after this id (the last one you handled); without it the stream starts from now.",
        schema=Schema(type=INTEGER, minimum=0),
        examples={"resume": Example(value=41)},
    ),
    Parameter(
        name="Last-Event-ID",
        param_in="header",
        required=False,
        description="The same as `last_event_id`, as EventSource sends it when it reconnects (it wins).",
        schema=Schema(type=INTEGER, minimum=0),
    ),
    Parameter(
        name="types",
        param_in="query",
        required=False,
        description="Only these event types, comma-separated (`connected`, `error` and `resync_required` always come).",
        schema=Schema(type=STRING),
        examples={"orders": Example(value="order_created,order_status_changed")},
    ),
]

SUMMARIES = {
    "listSellers": "List your sellers",
    "createSeller": "Add a seller",
    "getSeller": "Get a seller",
    "deleteSeller": "Delete a seller and its products",
    "listProducts": "List your products (filters: seller_id, status, q, low_stock)",
    "createProduct": "Add a product",
    "getProduct": "Get a product",
    "deleteProduct": "Delete a product",
    "listOrders": "List your orders",
    "createOrder": "Add an order",
    "getOrder": "Get an order",
    "getSettings": "Your settings",
    "getMe": "The signed-in user",
}
"""Summaries of the operations whose handler has none."""

DESCRIPTION = """\
The REST side of dropsync: sellers, products, orders and settings. Every change is recorded as an
event and streamed to every device of its owner over **Server-Sent Events** (`GET /events`) and
**WebSocket** (`GET /ws`, not shown here: see `docs/api.md`).

**Auth**: `POST /auth/token` with `{"username", "password"}` (the demo: `demo` / `demo-password`),
then click **Authorize** and paste the `access_token` under *bearerAuth*. The streams also take it
as `?access_token=` or an `access_token` cookie.

**Conventions**: ids are integers; money is a decimal string (`"12.99"`); times are ISO 8601 UTC;
lists take `limit` (1-500, default 50) and `offset` and answer `{"items", "total", "limit",
"offset"}`; `GET`/`POST`/`PATCH` of a seller, product or order answer an `ETag` (`"v3"`) that a
`PATCH` may send back as `If-Match`; any write may carry an `Idempotency-Key`. Another user's object
is a 404. Errors are `{"status_code", "detail", "extra"?}`.
"""

TAGS = [
    Tag(name="auth", description="Accounts and tokens."),
    Tag(name="sellers", description="Suppliers, and importing their product feeds."),
    Tag(name="products", description="The catalogue, bulk changes and pushing products to the store."),
    Tag(name="orders", description="Orders: create, pull from the store, process, ship."),
    Tag(name="settings", description="Your settings (one set per user)."),
    Tag(name="notifications", description="Messages to all of your devices."),
    Tag(name="events", description="The recorded events, to page through."),
    Tag(name="streams", description="Live events: SSE here, WebSocket at `/ws` (see docs/api.md)."),
    Tag(name="operations", description="Health, readiness and metrics."),
]


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="dropsync",
        version=version,
        description=DESCRIPTION,
        path=PATH,
        render_plugins=[LocalSwagger(), LocalRedoc()],
        operation_id_creator=operation_id,
        components=Components(security_schemes=SECURITY_SCHEMES),
        tags=TAGS,
    )


# --- finishing the document -----------------------------------------------------------------------


def operations(document: OpenAPI) -> Iterator[tuple[str, str, Operation]]:
    """Every (path, method, operation) of the document."""
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                yield path, method, operation


def finish_document(app: Litestar) -> None:
    """Add to ``app``'s generated document what its types cannot say (see the module's docstring).

    Call it once, after the app is built and before it serves: Litestar builds the document once
    and serves that same object from then on.
    """
    document = app.openapi_schema
    components = document.components
    components.schemas.update(SCHEMAS)
    for path, method, operation in operations(document):
        finish_operation(path, method, operation)


def finish_operation(path: str, method: str, operation: Operation) -> None:
    op_id = operation.operation_id or ""
    operation.security = security_for(op_id)
    if op_id in SUMMARIES:
        operation.summary = SUMMARIES[op_id]
    operation.parameters = parameters_for(op_id, path, method, operation) or None
    if isinstance(operation.request_body, RequestBody) and op_id in openapi_examples.REQUESTS:
        examples = openapi_examples.REQUESTS[op_id]
        for media in operation.request_body.content.values():
            media.examples = {name: Example(summary=name, value=literal(value)) for name, value in examples.items()}
    responses = operation.responses or {}
    for code, response in responses.items():
        if code.startswith("2") and isinstance(response, OpenAPIResponse):
            finish_success(op_id, response)
    for code in error_codes(op_id, method, path, operation):
        responses[code] = error_response(code)
    operation.responses = responses


def parameters_for(op_id: str, path: str, method: str, operation: Operation) -> list[Parameter | Reference]:
    """The operation's parameters, with examples for path ids, plus the stream's, ``If-Match`` and
    ``Idempotency-Key``."""
    parameters = list(operation.parameters or ())
    for parameter in parameters:
        if isinstance(parameter, Parameter) and parameter.param_in == "path" and not parameter.examples:
            parameter.examples = {"the first": Example(value=1)}
    if op_id == "streamEvents":
        parameters.extend(STREAM_PARAMETERS)
    if op_id in CONDITIONAL_WRITES:
        parameters.append(IF_MATCH)
    if method in WRITE_METHODS and not path.startswith("/auth"):
        parameters.append(IDEMPOTENCY_KEY)
    return parameters


def finish_success(op_id: str, response: OpenAPIResponse) -> None:
    """An answer's example, and a schema where the handler's type says only "an object"."""
    for media_type, media in (response.content or {}).items():
        if op_id in FALLBACK_SCHEMAS and is_untyped(media.schema):
            media.schema = ref(FALLBACK_SCHEMAS[op_id])
        if media_type == "text/event-stream":
            media.schema = Schema(type=STRING, description="`retry:`, then `id:`/`event:`/`data:` blocks")
            media.example = openapi_examples.EVENT_STREAM
        elif op_id in openapi_examples.RESPONSES:
            media.examples = {"example": Example(value=literal(openapi_examples.RESPONSES[op_id]))}


def is_untyped(schema: Schema | Reference | None) -> bool:
    """True for the schema Litestar gives an answer typed ``dict[str, Any]`` (any object) or sent as
    pre-encoded ``bytes`` (a string)."""
    return isinstance(schema, Schema) and schema.to_schema() in (
        {"type": "object", "additionalProperties": {}},
        {"type": "string"},
    )


def document_version() -> str:
    """The package's version, for ``info.version``."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only at start-up

    try:
        return version("dropsync")
    except PackageNotFoundError:
        return "0.0.0"
