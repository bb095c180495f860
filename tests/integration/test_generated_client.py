"""A Python client generated from the served OpenAPI document (``openapi-python-client``) signs up,
signs in, creates a product and reads it back from a real server — as an API user would."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import ServerProcess, sqlite_database

PACKAGE = "dropsync_client"
CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def client_package(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated package, imported from a temporary folder (and forgotten afterwards)."""
    folder = tmp_path_factory.mktemp("generated")
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(f"{server.url}/schema/openapi.json", timeout=10).content)
    (folder / "config.yaml").write_text(CONFIG)
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [str(generator), "generate", "--path", str(document), "--config", str(folder / "config.yaml"),
         "--meta", "none", "--output-path", str(folder / PACKAGE)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_creates_a_product_and_reads_it_back(server: ServerProcess, client_package: Any) -> None:
    models = module("models")
    anonymous = client_package.Client(base_url=server.url, raise_on_unexpected_status=True)
    registered = module("api.auth.register").sync_detailed(
        client=anonymous, body=models.Registration(username="generated", password="generated-password")
    )
    assert registered.status_code == 201, registered.content
    token = module("api.auth.create_token").sync(
        client=anonymous, body=models.Credentials(username="generated", password="generated-password")
    )
    # to_dict(): the same whether the answer's schema is typed (attributes) or "any object" (a mapping)
    client = client_package.AuthenticatedClient(base_url=server.url, token=token.to_dict()["access_token"])

    body = models.ProductCreate(sku="GEN-1", name="Generated mug", price="12.99", stock=7, currency="USD")
    created = module("api.products.create_product").sync_detailed(client=client, body=body)
    assert created.status_code == 201, created.content
    assert created.headers["etag"] == '"v1"'
    product_id = created.parsed.to_dict()["id"] if created.parsed is not None else None
    assert isinstance(product_id, int)

    read = module("api.products.get_product").sync_detailed(product_id=product_id, client=client)
    assert read.status_code == 200, read.content
    fields = read.parsed.to_dict()
    assert (fields["sku"], fields["name"], fields["price"], fields["stock"]) == ("GEN-1", "Generated mug", "12.99", 7)

    missing = module("api.products.get_product").sync_detailed(product_id=999_999, client=client)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error)
    assert missing.parsed.detail == "product 999999 not found"

    refused = module("api.products.get_product").sync_detailed(
        product_id=product_id, client=client_package.Client(base_url=server.url)
    )
    assert refused.status_code == 401
