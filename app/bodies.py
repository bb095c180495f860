"""Decoding request bodies: a JSON body the decoder cannot take is the client's 400, never our 500.

msgspec raises :class:`RecursionError` for JSON nested deeper than the interpreter's recursion
limit (``[[[[...]]]]`` 1,000 deep is 2 KB) and :class:`UnicodeDecodeError` for bytes that are not
UTF-8; Litestar lets both escape as 500s. :class:`BodyRequest` turns them into 400s on every body
route, and :func:`decode_json` does the same for any other JSON a client sends (the WebSocket's
frames).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

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


class BodyRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body refuses nesting too deep and non-UTF-8 bytes with a 400."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ValidationException(detail=TOO_DEEP) from None
        except UnicodeDecodeError:
            raise ValidationException(detail=NOT_UTF8) from None
