"""One place that turns errors into responses: Litestar's JSON error shape, never a 500 for bad input.

- Domain errors map to 400/401/403/404/409 (``detail`` is the error's message).
- A body that fails validation is re-checked field by field, so the 400 names *every* bad field,
  not only the first one msgspec stopped at.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions.responses import create_exception_response
from litestar.status_codes import HTTP_409_CONFLICT
from litestar.types import Empty, ExceptionHandlersMap

from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidField,
    InvalidFields,
    NotFound,
    Unauthorized,
)

_PATH_IN_MESSAGE = re.compile(r" - at `\$(.*)`$")


class ConflictException(HTTPException):
    status_code = HTTP_409_CONFLICT


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    http_exc: HTTPException
    if isinstance(exc, NotFound):
        http_exc = NotFoundException(detail=str(exc))
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
    if (
        data_field is not None
        and body_errors
        and isinstance(data_field.annotation, type)
        and body is not Empty
    ):
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raw = None
        if isinstance(raw, dict) and issubclass(data_field.annotation, msgspec.Struct):
            messages = struct_errors(data_field.annotation, raw)
            if messages:
                exc = ValidationException(detail=exc.detail, extra=messages)
    return create_exception_response(request, exc)


def struct_errors(
    struct: type[msgspec.Struct], raw: dict[str, Any], prefix: str = ""
) -> list[dict[str, str]]:
    """Every problem of ``raw`` as a ``struct`` body: one message per bad, missing or unknown field."""
    messages: list[dict[str, str]] = []
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    for name, field in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if field.required:
                messages.append({"message": "Object missing required field", "key": key, "source": "body"})
            continue
        try:
            msgspec.convert(raw[name], field.type, strict=False)
        except msgspec.ValidationError as error:
            text = str(error)
            match = _PATH_IN_MESSAGE.search(text)
            nested = match.group(1) if match else ""
            nested_key = nested.replace("[", ".").replace("]", "").lstrip(".")
            messages.append(
                {
                    "message": text[: match.start()] if match else text,
                    "key": f"{key}.{nested_key}" if nested_key else key,
                    "source": "body",
                }
            )
    for name in raw:
        if name not in fields:
            messages.append(
                {"message": "Object contains unknown field", "key": f"{prefix}{name}", "source": "body"}
            )
    return messages


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error_handler,
    ValidationException: validation_error_handler,
}
