"""The cycle collector once the app has started (``app.main.GC_THRESHOLDS``).

CPython's default thresholds ran a young collection every 700 new container objects: ~20 during
one 1,000-item bulk update, each walking everything young (milliseconds apiece with many streams
open), and what they kept alive went on to bring full collections (tens of milliseconds). The app
in process here (Litestar's test client, which runs its lifespan); the collections counted with
``gc.callbacks`` around one bulk request.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.config import Settings

with warnings.catch_warnings():
    # Importing the app builds it: Litestar warns about the app's inferred dependencies.
    warnings.simplefilter("ignore", DeprecationWarning)
    from app.main import GC_THRESHOLDS, create_app

pytestmark = pytest.mark.anyio

ITEMS = 1000


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[AsyncTestClient[Any], dict[str, str], list[int]]]:
    """The app started on a fresh SQLite file, a user's headers and the ids of its 1,000 products."""
    before = gc.get_threshold()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/collector.db", rate_limit=False, log_level="warning")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app = create_app(settings)
    try:
        async with AsyncTestClient(app=app) as client:
            account = {"username": "collector", "password": "collector-password-1"}
            assert (await client.post("/auth/register", json=account)).status_code == 201
            token = (await client.post("/auth/token", json=account)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            ids = []
            for number in range(ITEMS):
                body = {"sku": f"GC-{number}", "name": f"p{number}", "price": "1.00", "stock": 10}
                response = await client.post("/products", json=body, headers=headers)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            yield client, headers, ids
    finally:
        gc.set_threshold(*before)


async def collections_during_a_bulk_update(
    client: AsyncTestClient[Any], headers: dict[str, str], ids: list[int], stock: int
) -> int:
    counted: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            counted.append(info["generation"])

    items = [{"product_id": product_id, "stock": stock} for product_id in ids]
    gc.collect()
    gc.callbacks.append(count)
    try:
        response = await client.post("/products/bulk/stock-update", json={"items": items}, headers=headers)
    finally:
        gc.callbacks.remove(count)
    assert response.status_code == 200, response.text
    assert response.json()["changed"] == ITEMS
    return len(counted)


async def test_the_started_app_sets_the_thresholds_and_a_bulk_update_runs_few_collections(
    started: tuple[AsyncTestClient[Any], dict[str, str], list[int]],
) -> None:
    client, headers, ids = started
    assert gc.get_threshold() == GC_THRESHOLDS
    with_ours = await collections_during_a_bulk_update(client, headers, ids, stock=11)
    # The same request under CPython's defaults, to show what the setting saves.
    gc.set_threshold(700, 10, 10)
    with_defaults = await collections_during_a_bulk_update(client, headers, ids, stock=12)
    assert with_ours <= 2, with_ours
    assert with_defaults >= 5 * max(with_ours, 1), (with_ours, with_defaults)
