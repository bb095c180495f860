"""Where a connection's access token comes from."""

from __future__ import annotations

from typing import Any

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
    """
    return (
        bearer_token(connection)
        or connection.query_params.get("access_token")
        or connection.cookies.get("access_token")
    )
