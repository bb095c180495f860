"""One place that turns errors into responses: Litestar's JSON error shape, never a 500 for bad input.

- Domain errors map to 400/401/403/404/409 (``detail`` is the error's message).
- A body that fails validation is re-checked field by field, so the 400 names *every* bad field,
  not only the first one msgspec stopped at.
"""

from __future__ import annotations

import logging
import re
import types
import typing
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
    HTTP_502_BAD_GATEWAY,
    HTTP_504_GATEWAY_TIMEOUT,
)
from litestar.types import Empty, ExceptionHandlersMap
from msgspec import UnsetType

from app.controllers.params import etag
from app.schemas import Money
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
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
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


def validation_error_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    data_field = request.route_handler.parsed_data_field
    body_errors = isinstance(exc.extra, list) and any(item.get("source") == "body" for item in exc.extra)
    # Handlers are synchronous: the body Litestar already read is cached in the connection state.
    body = request._connection_state.body
    if data_field is not None and body_errors and isinstance(data_field.annotation, type) and body is not Empty:
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raw = None
        if isinstance(raw, dict) and issubclass(data_field.annotation, msgspec.Struct):
            messages = struct_errors(data_field.annotation, raw)
            if messages:
                exc = ValidationException(detail=exc.detail, extra=messages)
        elif not body.strip():  # Litestar's own message for a missing body is "'data'"
            exc = ValidationException(detail=exc.detail, extra=[_message("A JSON object body is required", "data")])
    return create_exception_response(request, exc)


def undecodable_body_handler(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    """A body that is not UTF-8 is a 400 (msgspec raises :class:`UnicodeDecodeError` for it, not a DecodeError).

    Any other :class:`UnicodeDecodeError` is a bug of ours: logged, and a 500.
    """
    body = request._connection_state.body
    if isinstance(body, bytes) and not _is_utf8(body):
        return create_exception_response(request, ValidationException(detail="Request body is not valid UTF-8"))
    logger.error("unexpected UnicodeDecodeError on %s %s", request.method, request.url.path, exc_info=exc)
    return create_exception_response(request, InternalServerException())


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def struct_errors(struct: type[msgspec.Struct], raw: dict[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """Every problem of ``raw`` as a ``struct`` body: one message per bad, missing or unknown field.

    Nested structs and lists of structs are checked element by element, so two bad items give
    two messages (``items.0.quantity``, ``items.1.quantity``). ``Money`` fields are also parsed
    as the services parse them, so a bad amount is named beside the type errors.
    """
    messages: list[dict[str, str]] = []
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    for name, field in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if field.required:
                messages.append(_message("Object missing required field", key))
            continue
        messages.extend(_value_errors(field.type, raw[name], key))
    for name in raw:
        if name not in fields:
            messages.append(_message("Object contains unknown field", f"{prefix}{name}"))
    return messages


def _message(text: str, key: str) -> dict[str, str]:
    return {"message": text, "key": key, "source": "body"}


def _value_errors(annotation: Any, value: Any, key: str) -> list[dict[str, str]]:
    try:
        msgspec.convert(value, annotation, strict=False)
    except msgspec.ValidationError as error:
        nested = _nested_errors(annotation, value, key)
        if nested:
            return nested
        text = str(error)
        match = _PATH_IN_MESSAGE.search(text)
        path = match.group(1) if match else ""
        nested_key = path.replace("[", ".").replace("]", "").lstrip(".")
        return [_message(text[: match.start()] if match else text, f"{key}.{nested_key}" if nested_key else key)]
    if value is not None and _is_money(annotation):
        try:
            parse_money(value, key)
        except InvalidField as error:
            return [_message(error.message, key)]
    return []


def _nested_errors(annotation: Any, value: Any, key: str) -> list[dict[str, str]]:
    """The errors inside a nested struct or list of structs, each under its own key ([] if none)."""
    inner = _without_wrappers(annotation)
    if isinstance(value, dict) and isinstance(inner, type) and issubclass(inner, msgspec.Struct):
        return struct_errors(inner, value, f"{key}.")
    if isinstance(value, list) and typing.get_origin(inner) is list:
        (element,) = typing.get_args(inner)
        return [error for index, item in enumerate(value) for error in _value_errors(element, item, f"{key}.{index}")]
    return []


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
}
