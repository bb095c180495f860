"""Where a connection's access token comes from."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the first one), if there is one.

    Read from the ASGI scope's raw headers (names arrive lower-cased): building Litestar's header
    mapping for one header costs more than the rest of a remembered token's check."""
    for name, value in connection.scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def stream_token(connection: ASGIConnection[Any, Any, Any, Any], public_origins: Collection[str] = ()) -> str | None:
    """Header first, then the ``access_token`` query parameter, then the ``access_token`` cookie.

    EventSource and browser WebSockets cannot set headers, hence the other two. A token the client
    put in the URL for this very request wins over a cookie the browser sends on its own, which
    may be left over from an earlier sign-in. The query parameter is redacted from every log line
    (``app.logs``).

    The cookie counts only for a request from the same origin (or from no browser page at all):
    browsers attach cookies to a WebSocket opened by any site, so another site could otherwise
    read the user's stream (cross-site WebSocket hijacking). Pages of other origins put the token
    in the URL, as the JavaScript client does. See :func:`same_origin` for what "same" means.
    """
    token = bearer_token(connection) or connection.query_params.get("access_token")
    if token:
        return token
    cookie = connection.cookies.get("access_token")
    return cookie if cookie and same_origin(connection, public_origins) else None


def same_origin(connection: ASGIConnection[Any, Any, Any, Any], public_origins: Collection[str] = ()) -> bool:
    """Whether the page that opened this request (its ``Origin``) is the site itself.

    - No ``Origin``: not a cross-site browser request (browsers send it on those).
    - With ``public_origins`` configured (``https://shop.example.com``, the addresses users type):
      the origin must be one of them. This is right behind any proxy, whatever it forwards.
    - Otherwise the origin's host must be the host the browser addressed: the ``Host`` header, or
      the host a proxy in front forwards (``X-Forwarded-Host``, ``Forwarded: host=``), since a
      proxy may rewrite ``Host``. Honouring the forwarded host cannot let another site in: its
      page cannot set these headers on an EventSource or a WebSocket, and a proxy sets them from
      the ``Host`` the browser sent, which names our site, not the other.
    """
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    if public_origins:
        return normalise_origin(origin) in {normalise_origin(allowed) for allowed in public_origins}
    scheme = urlsplit(origin).scheme.lower()
    wanted = _host(urlsplit(origin).netloc, scheme)
    addressed = [connection.headers.get("host", ""), *_forwarded_hosts(connection)]
    return any(_host(host, scheme) == wanted for host in addressed if host)


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]``, lower case, without the scheme's default port."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    return f"{scheme}://{_host(parts.netloc, scheme)}"


def _host(netloc: str, scheme: str) -> str:
    host = netloc.strip().lower()
    default = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}.get(scheme)
    return host.removesuffix(default) if default else host


def _forwarded_hosts(connection: ASGIConnection[Any, Any, Any, Any]) -> list[str]:
    hosts = [value.split(",")[0].strip() for value in connection.headers.getall("x-forwarded-host", [])]
    for value in connection.headers.getall("forwarded", []):
        first = value.split(",")[0]
        for pair in first.split(";"):
            name, _, host = pair.strip().partition("=")
            if name.lower() == "host" and host:
                hosts.append(host.strip('"'))
    return hosts
