"""Pins the library internals our adapters reach into (``app.serving`` into uvicorn's httptools
protocol; ``app.bodies`` and ``app.errors`` into Litestar's request). When a version moves, read
the new code and update the adapter before moving the pin."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import litestar.connection.request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from app.serving import GuardedHttpToolsProtocol


def test_the_versions_the_adapters_were_written_for() -> None:
    assert version("uvicorn").startswith("0.54."), "re-read uvicorn's httptools_impl for app.serving"
    assert version("litestar").startswith("2.25."), "re-read Litestar's Request for app.bodies and app.errors"


def test_uvicorn_still_calls_the_hooks_the_guard_observes() -> None:
    source = inspect.getsource(HttpToolsProtocol)
    for hook in ("def data_received", "def on_message_begin", "def on_headers_complete", "def on_message_complete"):
        assert hook in source
    assert "self.parser.feed_data(data)" in source  # data_received feeds the parser synchronously
    cycle = inspect.getsource(RequestResponseCycle.__init__)
    for attribute in ("waiting_for_100_continue", "response_started", "response_complete"):
        assert f"self.{attribute}" in cycle
    assert issubclass(GuardedHttpToolsProtocol, HttpToolsProtocol)


def test_litestar_still_caches_the_body_where_app_bodies_replaces_it() -> None:
    source = inspect.getsource(litestar.connection.request.Request)
    assert "self._json = self._connection_state.json = decode_json(" in source
    assert "self._body = self._connection_state.body = " in source
    assert 'raise InternalServerException("client disconnected prematurely")' in source
