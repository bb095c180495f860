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
    """Header first, then the ``access_token`` cookie, then the ``access_token`` query parameter.

    EventSource and browser WebSockets cannot set headers, hence the other two; the query
    parameter is redacted from every log line (``app.logs``).
    """
    return (
        bearer_token(connection)
        or connection.cookies.get("access_token")
        or connection.query_params.get("access_token")
    )
