"""Decoding request bodies: a JSON body the decoder cannot take is the client's 400, never our 500.

msgspec raises :class:`RecursionError` for JSON nested deeper than the interpreter's recursion
limit (``[[[[...]]]]`` 1,000 deep is 2 KB) and :class:`UnicodeDecodeError` for bytes that are not
UTF-8; Litestar lets both escape as 500s. :class:`BodyRequest` turns them into 400s on every body
route, and :func:`decode_json` does the same for any other JSON a client sends.

:class:`BodyRequest` also checks a body against the route's struct itself and lists its problems
(:func:`app.errors.struct_errors`, bounded) while the decoded body is at hand, then hands
Litestar a small stand-in that fails validation in its place, so the 400 still comes after the
dependencies (a bad token is a 401 first). Left to Litestar (2.25), a bad body goes through its
signature model's error collection, which keeps every exception in a list inside the frame those
exceptions' tracebacks point at: a reference cycle holding the whole decoded body until a full
garbage collection (60,000 keys: +6 MB per request, kept).
"""

from __future__ import annotations

import math
from typing import Any, cast

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, InternalServerException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Empty, HTTPReceiveMessage, Receive

from app.errors import BODY_PROBLEMS, struct_errors

TOO_DEEP = "the JSON body is nested too deeply"
NOT_UTF8 = "Request body is not valid UTF-8"

_decoder = msgspec.json.Decoder()


class BadJson(ValueError):
    """A client's JSON that cannot be decoded; ``str()`` says why in one line."""


def decode_json(data: str | bytes) -> Any:
    """``data`` decoded, or :class:`BadJson` (invalid, not UTF-8 or nested too deeply)."""
    try:
        return _decoder.decode(data)
    except RecursionError:
        raise BadJson("the JSON is nested too deeply") from None
    except UnicodeDecodeError:
        raise BadJson("the JSON is not valid UTF-8") from None
    except msgspec.DecodeError as exc:
        raise BadJson(f"the JSON is not valid: {exc}") from None


class ClientGone(Exception):
    """The client disconnected before the end of its request body."""


async def read_body(receive: Receive, limit: float) -> bytes:
    """The whole request body from ASGI ``receive``: :class:`RequestEntityTooLarge` as soon as it
    grows past ``limit`` bytes (nothing more is read), :class:`ClientGone` if the client leaves first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = cast(HTTPReceiveMessage, await receive())
        if event["type"] != "http.request":
            raise ClientGone
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge
        chunks.append(chunk)
        if not event.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body refuses nesting too deep and non-UTF-8 bytes with a 400,
    and is checked against the route's struct (a 400 naming the bad fields) before Litestar sees it.

    Its body is read straight from ``receive``, with Litestar's limits: a ``content-length`` over
    the route's ``request_max_body_size`` is 413 before anything is read, and so is a body that
    grows past it. (Litestar's own reading builds the whole header mapping to find
    ``content-length`` and runs an async generator per request.)"""

    async def body(self) -> bytes:
        if self._body is Empty:
            if (body := self._connection_state.body) is Empty:
                body = self._connection_state.body = await self._read_body()
            self._body = body
        return self._body

    async def _read_body(self) -> bytes:
        if not self.is_connected:
            raise InternalServerException("stream consumed")
        limit = self.route_handler.resolve_request_max_body_size() or math.inf
        if (announced := self.content_length) is not None and announced > limit:
            raise RequestEntityTooLarge
        try:
            body = await read_body(self.receive, limit)
        except ClientGone:
            raise InternalServerException("client disconnected prematurely") from None
        self.is_connected = False
        return body

    @property
    def content_length(self) -> int | None:
        """The ``content-length`` header as an int, found in the raw headers (no mapping built)."""
        if self._content_length is Empty:
            for name, value in self.scope["headers"]:
                if name == b"content-length":
                    try:
                        self._content_length = int(value)
                    except ValueError:
                        raise ClientException(f"Invalid content-length: {value.decode('latin-1')!r}") from None
                    break
            else:
                self._content_length = None
        return self._content_length

    async def json(self) -> Any:
        try:
            decoded = await super().json()
        except RecursionError:
            raise ValidationException(detail=TOO_DEEP) from None
        except UnicodeDecodeError:
            raise ValidationException(detail=NOT_UTF8) from None
        struct = _body_struct(self)
        if struct is not None and isinstance(decoded, dict) and not _fits(decoded, struct):
            # Listed now, raised by Litestar after the dependencies (a bad token is a 401 before a
            # bad body is a 400): it gets a stand-in that cannot fit, and the big body is freed.
            self.scope["state"][BODY_PROBLEMS] = struct_errors(struct, decoded)
            self._connection_state.json = self._json = {_NO_FIELD: None}
            self._connection_state.body = self._body = b"{}"  # nor the raw bytes (up to max_body_bytes)
            return self._json
        return decoded


_NO_FIELD = "\x00"  # no struct has this field: the stand-in body never validates


def _fits(decoded: dict[str, Any], struct: type[msgspec.Struct]) -> bool:
    try:
        msgspec.convert(decoded, struct, strict=False)
    except msgspec.ValidationError:
        return False
    return True


def _body_struct(request: Request[Any, Any, Any]) -> type[msgspec.Struct] | None:
    field = request.route_handler.parsed_data_field
    annotation = field.annotation if field is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) else None
