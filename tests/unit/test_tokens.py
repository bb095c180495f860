"""streams.tokens: where a stream's token comes from, and when the cookie counts (same origin,
also behind a proxy)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.connection import ASGIConnection

from streams.tokens import normalise_origin, same_origin, stream_token


def connection(headers: dict[str, str] | list[tuple[str, str]], query: str = "") -> ASGIConnection[Any, Any, Any, Any]:
    pairs = headers.items() if isinstance(headers, dict) else headers
    scope = {
        "type": "websocket",
        "headers": [(name.lower().encode(), value.encode()) for name, value in pairs],
        "query_string": query.encode(),
        "path": "/ws",
    }
    return ASGIConnection(scope)  # type: ignore[arg-type]


COOKIE = {"cookie": "access_token=secret"}


def test_the_cookie_counts_without_an_origin_and_from_the_same_host() -> None:
    assert stream_token(connection(COOKIE)) == "secret"
    assert stream_token(connection({**COOKIE, "host": "shop.example", "origin": "https://shop.example"})) == "secret"


def test_the_cookie_does_not_count_for_a_page_of_another_site() -> None:
    evil = {**COOKIE, "host": "shop.example", "origin": "https://evil.example"}
    assert stream_token(connection(evil)) is None


def test_a_token_in_the_url_counts_whatever_the_origin() -> None:
    evil = {"host": "shop.example", "origin": "https://evil.example"}
    assert stream_token(connection(evil, "access_token=abc")) == "abc"


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://shop.example", "shop.example:443"),
        ("http://shop.example", "shop.example:80"),
        ("http://Shop.Example:8080", "shop.example:8080"),
    ],
)
def test_default_ports_and_case_do_not_matter(origin: str, host: str) -> None:
    assert same_origin(connection({"host": host, "origin": origin}))


def test_behind_a_proxy_that_rewrites_host_the_forwarded_host_counts() -> None:
    # nginx's default `proxy_pass http://backend;` sends Host: backend; the site's host is forwarded.
    forwarded = {"host": "127.0.0.1:8001", "x-forwarded-host": "shop.example", "origin": "https://shop.example"}
    assert same_origin(connection(forwarded))
    rfc7239 = {"host": "backend", "forwarded": 'for=1.2.3.4;host="shop.example:8443";proto=https'}
    assert same_origin(connection({**rfc7239, "origin": "https://shop.example:8443"}))
    assert not same_origin(connection({**forwarded, "origin": "https://evil.example"}))


def test_a_configured_public_origin_decides_alone() -> None:
    public = ["https://shop.example"]
    proxied = {"host": "backend:8000", "origin": "https://shop.example"}
    assert same_origin(connection(proxied), public)
    assert not same_origin(connection({"host": "evil.example", "origin": "https://evil.example"}), public)
    assert not same_origin(connection({"host": "shop.example", "origin": "http://shop.example"}), public)  # scheme


def test_origins_are_normalised() -> None:
    assert normalise_origin("HTTPS://Shop.Example:443") == "https://shop.example"
    assert normalise_origin("http://shop.example:8080") == "http://shop.example:8080"
