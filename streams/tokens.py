"""Where a connection's access token comes from."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def stream_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """Header first, then the ``access_token`` query parameter, then the ``access_token`` cookie.

    EventSource and browser WebSockets cannot set headers, hence the other two. A token the client
    put in the URL for this very request wins over a cookie the browser sends on its own, which
    may be left over from an earlier sign-in. The query parameter is redacted from every log line
    (``app.logs``).

    The cookie counts only for a request from the same origin (or from no browser page at all):
    browsers attach cookies to a WebSocket opened by any site, so another site could otherwise
    read the user's stream (cross-site WebSocket hijacking). Pages of other origins put the token
    in the URL, as the JavaScript client does.
    """
    token = bearer_token(connection) or connection.query_params.get("access_token")
    if token:
        return token
    cookie = connection.cookies.get("access_token")
    return cookie if cookie and _same_origin(connection) else None


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # not sent by a page of another site (browsers send Origin with those)
    return urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()
