"""One place that turns errors into responses and log lines: Litestar's JSON error shape, never a
500 for bad input, never an ERROR line for a client's mistake.

- Domain errors map to 400/401/403/404/409/412/422/502/504 (``detail`` is the error's message).
- A body that fails validation is re-checked field by field, so the 400 names the bad fields, not
  only the first one msgspec stopped at: at most :data:`MAX_LISTED_PROBLEMS`, then one
  ``"and N more"`` item (a body of 60,000 unknown keys costs milliseconds and a small answer).
- A database that does not answer is a 503 with ``Retry-After`` (see :mod:`app.outage`).
- Logging (:func:`log_exception`, Litestar's exception logging hook): a client error (4xx) is one
  INFO line; an upstream's failure (502/504) or an outage one WARNING line; only our own faults
  are ERROR, with the traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import types
import typing
from collections.abc import Iterator
from itertools import islice
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions.responses import create_exception_response
from litestar.status_codes import (
    HTTP_409_CONFLICT,
    HTTP_412_PRECONDITION_FAILED,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_502_BAD_GATEWAY,
    HTTP_503_SERVICE_UNAVAILABLE,
    HTTP_504_GATEWAY_TIMEOUT,
)
from litestar.types import Empty, ExceptionHandlersMap, Scope
from litestar.types.protocols import Logger
from msgspec import UnsetType

from app.controllers.params import etag
from app.outage import RETRY_AFTER_S, is_database_unavailable, outage_noticed
from app.schemas import Money, url_problem
from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidField,
    InvalidFields,
    ItemsNotFound,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    Unprocessable,
    UpstreamError,
    UpstreamTimeout,
)
from domain.values import parse_money

logger = logging.getLogger("dropsync.errors")
_PATH_IN_MESSAGE = re.compile(r" - at `\$(.*)`$")


class ConflictException(HTTPException):
    status_code = HTTP_409_CONFLICT


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    http_exc: HTTPException
    if isinstance(exc, ItemsNotFound):
        http_exc = NotFoundException(
            detail=f"{exc} ({exc.missing[0][0]})",
            extra=[
                {"message": f"{exc.kind} {what} not found", "key": key, "source": "body"} for key, what in exc.missing
            ],
        )
    elif isinstance(exc, NotFound):
        http_exc = NotFoundException(detail=str(exc))
    elif isinstance(exc, PreconditionFailed):
        http_exc = HTTPException(
            status_code=HTTP_412_PRECONDITION_FAILED,
            detail=str(exc),
            headers={"ETag": etag(exc.current_version)},
        )
    elif isinstance(exc, Unprocessable):
        extra = [{"message": error.message, "key": error.field, "source": exc.source} for error in exc.errors]
        http_exc = HTTPException(status_code=HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc), extra=extra or None)
    elif isinstance(exc, UpstreamError):
        status = HTTP_504_GATEWAY_TIMEOUT if isinstance(exc, UpstreamTimeout) else HTTP_502_BAD_GATEWAY
        http_exc = HTTPException(status_code=status, detail=str(exc))
    elif isinstance(exc, Conflict):
        http_exc = ConflictException(detail=str(exc))
    elif isinstance(exc, Forbidden):
        http_exc = PermissionDeniedException(detail=str(exc))
    elif isinstance(exc, Unauthorized):
        http_exc = NotAuthorizedException(detail=str(exc), headers={"WWW-Authenticate": "Bearer"})
    elif isinstance(exc, InvalidField | InvalidFields):
        errors = exc.errors if isinstance(exc, InvalidFields) else [exc]
        http_exc = ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": error.message, "key": error.field, "source": "body"} for error in errors],
        )
    else:
        http_exc = ValidationException(detail=str(exc))
    return create_exception_response(request, http_exc)


BODY_PROBLEMS = "dropsync.body_problems"  # scope state: the problems app.bodies listed for the body


def validation_error_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    listed = request.scope["state"].get(BODY_PROBLEMS)
    if listed:
        return create_exception_response(request, ValidationException(detail=exc.detail, extra=listed))
    data_field = request.route_handler.parsed_data_field
    body_errors = isinstance(exc.extra, list) and any(item.get("source") == "body" for item in exc.extra)
    # Handlers are synchronous: the body Litestar already read (and decoded) is in the connection state.
    state = request._connection_state
    body = state.body
    if data_field is not None and body_errors and isinstance(data_field.annotation, type) and body is not Empty:
        raw = state.json if state.json is not Empty else None
        if isinstance(raw, dict) and issubclass(data_field.annotation, msgspec.Struct):
            messages = struct_errors(data_field.annotation, raw)
            if messages:
                exc = ValidationException(detail=exc.detail, extra=messages)
        elif not body.strip():  # Litestar's own message for a missing body is "'data'"
            exc = ValidationException(detail=exc.detail, extra=[_message("A JSON object body is required", "data")])
    return create_exception_response(request, exc)


def undecodable_body_handler(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    """A body that is not UTF-8 is a 400 (msgspec raises :class:`UnicodeDecodeError` for it, not a DecodeError).

    Any other :class:`UnicodeDecodeError` is a bug of ours: a 500 (logged by :func:`log_exception`).
    """
    if _is_client_unicode_error(request.scope, exc):
        return create_exception_response(request, ValidationException(detail="Request body is not valid UTF-8"))
    return create_exception_response(request, InternalServerException())


def server_fault_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Any exception that is neither an HTTP nor a domain error: 503 while the database is
    unreachable (clients retry after ``Retry-After``), else a plain 500 that shows nothing."""
    if is_database_unavailable(exc):
        outage_noticed(request.app.state, exc)
        unavailable = HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            detail="the database is not answering; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
        return create_exception_response(request, unavailable)
    return create_exception_response(request, InternalServerException())


def _is_client_unicode_error(scope: Scope, exc: BaseException) -> bool:
    state = scope.get("_ls_connection_state")
    data = getattr(state, "body", Empty)
    return isinstance(exc, UnicodeDecodeError) and isinstance(data, bytes) and not _is_utf8(data)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- logging -----------------------------------------------------------------------------------------


def log_exception(_: Logger, scope: Scope, traceback: list[str]) -> None:
    """Litestar's exception logging hook (called inside the ``except`` block, before the handlers).

    Client errors (4xx) are one INFO line, failures of a service we call (502/504) one WARNING
    line, database outages one WARNING line per outage (by :mod:`app.outage`); our own faults are
    ERROR with the traceback. Access tokens and URL passwords are redacted by :mod:`app.logs`.
    """
    exc = sys.exc_info()[1]
    where = f"{scope.get('method', 'WEBSOCKET')} {scope.get('path', '?')}"
    status = status_of(exc, scope)
    if status is None:
        logger.error("%s failed:\n%s", where, "".join(traceback).rstrip())
    elif status == HTTP_503_SERVICE_UNAVAILABLE and exc is not None and is_database_unavailable(exc):
        return  # one line per outage, written by app.outage
    elif status >= HTTP_500_INTERNAL_SERVER_ERROR:
        logger.warning("%s -> %d: %s", where, status, _one_line(exc))
    elif status == CLIENT_CLOSED_REQUEST:
        logger.debug("%s: the client went away before sending its whole body", where)
    else:
        logger.info("%s -> %d: %s", where, status, _one_line(exc))


CLIENT_CLOSED_REQUEST = 499  # nginx's name for it: the client went away before sending its whole body
# Litestar (2.25) reports a client that hung up while its body was read as a 500 with this text.
_CLIENT_GONE = "client disconnected prematurely"


def status_of(exc: BaseException | None, scope: Scope) -> int | None:
    """The status an exception is answered with, or None when it is our own fault (a 500)."""
    if isinstance(exc, HTTPException):
        if exc.status_code == HTTP_500_INTERNAL_SERVER_ERROR:
            return CLIENT_CLOSED_REQUEST if exc.detail == _CLIENT_GONE else None
        return exc.status_code
    if isinstance(exc, DomainError):
        return _domain_status(exc)
    if exc is not None and is_database_unavailable(exc):
        return HTTP_503_SERVICE_UNAVAILABLE
    if exc is not None and _is_client_unicode_error(scope, exc):
        return 400
    return None


def _domain_status(exc: DomainError) -> int:
    for kind, status in _DOMAIN_STATUS:
        if isinstance(exc, kind):
            return status
    return 400


_DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (PreconditionFailed, 412),
    (Unprocessable, 422),
    (UpstreamTimeout, 504),
    (UpstreamError, 502),
    (Conflict, 409),
    (Forbidden, 403),
    (Unauthorized, 401),
)


def _one_line(exc: BaseException | None) -> str:
    text = exc.detail if isinstance(exc, HTTPException) else str(exc)
    text = " ".join(str(text).split())
    return text if len(text) <= 300 else text[:297] + "..."


# --- naming every bad field of a body, boundedly -------------------------------------------------------

MAX_LISTED_PROBLEMS = 20


def struct_errors(struct: type[msgspec.Struct], raw: dict[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """The problems of ``raw`` as a ``struct`` body: one message per bad, missing or unknown field.

    At most :data:`MAX_LISTED_PROBLEMS` are listed; the rest are counted in a last
    ``"and N more"`` item. Nested structs and lists of structs are checked element by element,
    so two bad items give two messages (``items.0.quantity``, ``items.1.quantity``); a list longer
    than its schema allows is one problem (its items are not looked at). ``Money`` fields are also
    parsed as the services parse them, and URLs checked as the feeds use them.
    """
    problems = _problems(struct, raw, prefix)
    listed = [_message(text, key) for text, key in islice(problems, MAX_LISTED_PROBLEMS)]
    more = sum(1 for _ in problems)
    if more:
        listed.append(_message(f"and {more} more problem{'s' if more != 1 else ''}", prefix.rstrip(".")))
    return listed


def _problems(struct: type[msgspec.Struct], raw: dict[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    for name, field in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if field.required:
                yield "Object missing required field", key
            continue
        yield from _value_errors(field.type, raw[name], key)
    for name in raw:
        if name not in fields:
            yield "Object contains unknown field", f"{prefix}{name}"


def _message(text: str, key: str) -> dict[str, str]:
    return {"message": text, "key": key, "source": "body"}


def _value_errors(annotation: Any, value: Any, key: str) -> Iterator[tuple[str, str]]:
    try:
        msgspec.convert(value, annotation, strict=False)
    except msgspec.ValidationError as error:
        nested = _nested_errors(annotation, value, key)
        first = next(nested, None)
        if first is not None:
            yield first
            yield from nested
            return
        text = str(error)
        match = _PATH_IN_MESSAGE.search(text)
        path = match.group(1) if match else ""
        nested_key = path.replace("[", ".").replace("]", "").lstrip(".")
        yield (text[: match.start()] if match else text), (f"{key}.{nested_key}" if nested_key else key)
        return
    if value is None:
        return
    if _is_money(annotation):
        try:
            parse_money(value, key)
        except InvalidField as error:
            yield error.message, key
    elif _has_meta(annotation, "http_url"):
        problem = url_problem(value)
        if problem is not None:
            yield problem, key


def _nested_errors(annotation: Any, value: Any, key: str) -> Iterator[tuple[str, str]]:
    """The errors inside a nested struct or list of structs, each under its own key (none if none)."""
    inner = _without_wrappers(annotation)
    if isinstance(value, dict) and isinstance(inner, type) and issubclass(inner, msgspec.Struct):
        yield from _problems(inner, value, f"{key}.")
    elif isinstance(value, list) and typing.get_origin(inner) is list and len(value) <= _max_length(annotation):
        (element,) = typing.get_args(inner)
        for index, item in enumerate(value):
            yield from _value_errors(element, item, f"{key}.{index}")


def _metas(annotation: Any) -> Iterator[msgspec.Meta]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        yield from (extra for extra in extras if isinstance(extra, msgspec.Meta))
        yield from _metas(base)
    elif typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        for member in typing.get_args(annotation):
            yield from _metas(member)


def _max_length(annotation: Any) -> int:
    lengths = [meta.max_length for meta in _metas(annotation) if meta.max_length is not None]
    return min(lengths) if lengths else sys.maxsize


def _has_meta(annotation: Any, flag: str) -> bool:
    return any(meta.extra and meta.extra.get(flag) for meta in _metas(annotation))


def _without_wrappers(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and without ``None``/``UNSET`` members of a union."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _without_wrappers(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        members = [arg for arg in typing.get_args(annotation) if arg not in {type(None), UnsetType}]
        if len(members) == 1:
            return _without_wrappers(members[0])
    return annotation


def _is_money(annotation: Any) -> bool:
    return bool(annotation == Money or Money in typing.get_args(annotation))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error_handler,
    ValidationException: validation_error_handler,
    UnicodeDecodeError: undecodable_body_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: server_fault_handler,  # any other exception that is not an HTTPException
}
