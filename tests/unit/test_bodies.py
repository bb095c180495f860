"""app.bodies.read_body against an ASGI receive that hands the body over in many messages."""

from __future__ import annotations

from typing import Any, cast

import pytest
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Receive, ReceiveMessage

from app.bodies import ClientGone, read_body

pytestmark = pytest.mark.anyio


def receiving(messages: list[dict[str, Any]]) -> tuple[Receive, list[int]]:
    """A receive that returns ``messages`` in turn, and a one-item list counting the calls."""
    calls = [0]

    async def receive() -> ReceiveMessage:
        calls[0] += 1
        return cast(ReceiveMessage, messages[calls[0] - 1])

    return receive, calls


def chunked(body: bytes, size: int) -> list[dict[str, Any]]:
    parts = [body[start : start + size] for start in range(0, len(body), size)]
    return [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1} for index, part in enumerate(parts)
    ]


async def test_a_body_in_many_messages_is_joined_in_order() -> None:
    body = bytes(range(256)) * 40
    receive, calls = receiving(chunked(body, 100))
    assert await read_body(receive, 1 << 20) == body
    assert calls[0] == 103


async def test_a_body_growing_past_the_limit_stops_being_read_at_once() -> None:
    receive, calls = receiving(chunked(b"x" * 1000, 100))
    with pytest.raises(RequestEntityTooLarge):
        await read_body(receive, 250)
    assert calls[0] == 3  # the message that crossed the limit is the last one read


async def test_a_body_exactly_at_the_limit_is_read() -> None:
    receive, _ = receiving(chunked(b"y" * 300, 100))
    assert await read_body(receive, 300) == b"y" * 300


async def test_a_client_leaving_mid_body_is_client_gone() -> None:
    receive, _ = receiving([*chunked(b"z" * 300, 100)[:2], {"type": "http.disconnect"}])
    with pytest.raises(ClientGone):
        await read_body(receive, 1 << 20)


async def test_an_empty_body_is_empty() -> None:
    receive, _ = receiving([{"type": "http.request", "body": b"", "more_body": False}])
    assert await read_body(receive, 10) == b""
