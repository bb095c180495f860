"""Query, path and header parameters shared by the resource controllers, and ETags."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.params import Parameter

Limit = Annotated[int, Parameter(ge=1, le=500, description="page size (1-500)")]
Offset = Annotated[int, Parameter(ge=0, le=2_147_483_647, description="items to skip")]
ObjectId = Annotated[int, Parameter(ge=1, le=2_147_483_647)]
# Litestar reads the bounds of an ``Annotated`` only at the top: ``ObjectId | None`` would drop them.
OptionalObjectId = Annotated[int | None, Parameter(ge=1, le=2_147_483_647)]
DEFAULT_LIMIT = 50
IF_MATCH_MAX_BYTES = 1000
IF_MATCH_DESCRIPTION = 'apply the change only if the resource is still at this ETag (e.g. "v3"); else 412'

_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def etag(version: int) -> str:
    """The strong entity tag of a resource at ``version``: ``"v3"`` (the resource's ``version`` field)."""
    return f'"v{version}"'


def if_match_versions(request: Request[Any, Any, Any]) -> frozenset[int] | None:
    """The versions the request's ``If-Match`` accepts (see :func:`expected_versions`); several
    ``If-Match`` headers count as one list, as RFC 9110 combines them.

    Read from the raw headers, not declared as a Litestar parameter: that builds the request's
    whole header mapping on every write that has one (a tenth of a stock PATCH's framework time).
    ``app.openapi`` documents the header on :data:`app.openapi.CONDITIONAL_WRITES`. Over
    :data:`IF_MATCH_MAX_BYTES` bytes in all is a 400 naming the header (checked once the body and
    the path are valid, so it is listed on its own).
    """
    values = [value for name, value in request.scope["headers"] if name == b"if-match"]
    if not values:
        return None
    if sum(len(value) for value in values) > IF_MATCH_MAX_BYTES:
        message = f"If-Match may have at most {IF_MATCH_MAX_BYTES} bytes"
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": message, "key": "If-Match", "source": "header"}],
        )
    return expected_versions(", ".join(value.decode("latin-1") for value in values))


def expected_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` header accepts; None when there is none or it is ``*``.

    A tag that is not one of ours (or a malformed header) accepts no version, so it fails with
    412. A ``W/`` prefix is tolerated: proxies that compress responses weaken ETags.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    position = 0
    text = if_match.strip()
    while position < len(text):
        match = _TAG.match(text, position)
        if match is None:
            return frozenset()
        tag = match.group(1)
        if tag.startswith("v") and tag[1:].isdigit() and len(tag) < 12:
            versions.add(int(tag[1:]))
        position = match.end()
    return frozenset(versions)


def with_etag(resource: dict[str, Any], status_code: int = 200) -> Response[dict[str, Any]]:
    """``resource`` as the response body, with its ETag."""
    return Response(resource, status_code=status_code, headers={"ETag": etag(resource["version"])})
