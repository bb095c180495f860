"""Request bodies are read by :class:`app.bodies.BodyRequest` straight from the ASGI ``receive``:
the limit (``max_body_bytes``, 1 MiB) holds however the body comes — announced too big, or sent
chunked without a length and growing past it — and a body in many chunks is read whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from tests.conftest import Account
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_chunked_body_growing_past_the_limit_is_413(client: httpx.AsyncClient, alice: Account) -> None:
    body = b'{"name": "' + b"n" * (MIB + 100) + b'"}'
    headers = {**alice.headers, "Content-Type": "application/json"}  # no Content-Length: chunked
    response = await client.post("/sellers", content=chunks(body, 64 * 1024), headers=headers)
    assert response.status_code == 413, response.text
    assert "detail" in response.json()
    assert (await client.get("/sellers", headers=alice.headers)).json()["items"] == []


async def test_a_body_in_many_chunks_is_read_whole(client: httpx.AsyncClient, alice: Account) -> None:
    notes = "x" * 5000
    body = b'{"name": "many chunks", "notes": "' + notes.encode() + b'"}'
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/sellers", content=chunks(body, 100), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["notes"] == notes


async def test_an_announced_body_over_the_limit_is_413_before_it_is_sent(server: ServerProcess, alice: Account) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"POST /sellers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + alice.token.encode() + b"\r\n"
            b"Content-Length: 10000000000\r\n\r\n{"
        )
        await writer.drain()
        with anyio.fail_after(5):  # the answer does not wait for 10 GB that never come
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
    finally:
        writer.close()


async def test_a_chunked_body_past_the_limit_with_an_idempotency_key_is_413(
    client: httpx.AsyncClient, alice: Account
) -> None:
    body = b'{"name": "' + b"n" * (MIB + 100) + b'"}'
    headers = {**alice.headers, "Content-Type": "application/json", "Idempotency-Key": "big-body"}
    response = await client.post("/sellers", content=chunks(body, 64 * 1024), headers=headers)
    assert response.status_code == 413, response.text
    assert "over" in response.json()["detail"]
    retry = await client.post("/sellers", json={"name": "small"}, headers=headers)  # the key was not kept
    assert retry.status_code == 201, retry.text
