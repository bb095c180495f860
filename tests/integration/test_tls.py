"""TLS by uvicorn's own flags: HTTPS for the API and SSE, WSS for the WebSocket (throwaway CA)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import trustme
import websockets

from tests.conftest import new_user
from tests.support.servers import ServerProcess, sqlite_database

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder: Path = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost")
    key, chain, ca = folder / "key.pem", folder / "cert.pem", folder / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(chain))
    authority.cert_pem.write_to_path(str(ca))
    with sqlite_database() as url:
        server = ServerProcess(
            env={"DROPSYNC_DATABASE_URL": url},
            extra_args=("--ssl-keyfile", str(key), "--ssl-certfile", str(chain)),
            tls_ca=str(ca),
        ).start()
        yield server
        server.stop()


async def test_https_api_and_sse_and_wss(tls_server: ServerProcess) -> None:
    assert tls_server.tls_ca is not None
    context = ssl.create_default_context(cafile=tls_server.tls_ca)
    async with httpx.AsyncClient(base_url=tls_server.url, verify=context, timeout=10) as http:
        user = await new_user(http, "tls")
        async with http.stream("GET", "/events", headers=user.headers) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            with anyio.fail_after(10):
                while not (await anext(lines)).startswith("event: connected"):
                    pass
        wss = tls_server.url.replace("https://", "wss://") + f"/ws?access_token={user.token}"
        async with websockets.connect(wss, ssl=context, open_timeout=10) as socket:
            with anyio.fail_after(10):
                first = json.loads(await socket.recv())
            assert first["type"] == "connected"
            response = await http.post("/notifications", json={"title": "over TLS"}, headers=user.headers)
            assert response.status_code == 201
            with anyio.fail_after(10):
                event = json.loads(await socket.recv())
            assert (event["type"], event["data"]["title"]) == ("system_notification", "over TLS")


async def test_plain_http_is_not_served_on_the_tls_port(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.HTTPError):
        await httpx.AsyncClient(timeout=5).get(f"http://localhost:{tls_server.port}/health")
