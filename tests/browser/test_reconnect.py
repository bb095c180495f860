"""The dashboard across a server restart: the badge, the back-off, and a lossless resume.

Each test runs its own server on a SQLite file and a fixed port, and restarts it on both, the
way a deploy does; the page never reloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field

import anyio.to_thread
import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import WAIT_MS, connections_of, open_dashboard, require_chromium, screenshot
from tests.conftest import Account, new_user
from tests.support.servers import ServerProcess, free_port, sqlite_database

pytestmark = pytest.mark.anyio

TRANSPORTS = ["sse", "ws"]


@dataclass
class Restartable:
    """A server that can be stopped and started again on the same database and port."""

    database_url: str
    port: int = field(default_factory=free_port)
    process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": self.database_url}, port=self.port)
        self.process = await anyio.to_thread.run_sync(process.start)

    async def stop(self) -> None:
        if self.process is not None:
            await anyio.to_thread.run_sync(self.process.stop)
            self.process = None


@pytest.fixture
def restartable() -> Iterator[Restartable]:
    require_chromium()
    with sqlite_database() as url:
        server = Restartable(url)
        try:
            yield server
        finally:
            if server.process is not None:
                server.process.stop()


@pytest.fixture
async def http(restartable: Restartable) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=restartable.url, timeout=10) as client:
        yield client


async def signed_in_page(
    context: BrowserContext, server: Restartable, http: httpx.AsyncClient, config: Mapping[str, object]
) -> tuple[Page, Account]:
    await server.start()
    account = await new_user(http, "restart")
    page = await open_dashboard(context, server.url, account, config)
    return page, account


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_badge_goes_red_on_stop_and_green_when_back(
    context: BrowserContext, restartable: Restartable, http: httpx.AsyncClient, transport: str
) -> None:
    config = {"transport": transport, "reconnect": {"floorMs": 200, "ceilingMs": 1000}}
    page, account = await signed_in_page(context, restartable, http, config)
    assert await page.evaluate("window.dropsync.client.transport") == transport
    badge = page.locator("#connection-badge")

    await restartable.stop()
    await expect(badge).to_have_attribute("data-state", "offline", timeout=5000)
    await expect(badge).to_have_text("Offline")
    await expect(badge).to_have_css("background-color", "rgb(180, 35, 24)")
    detail = page.locator("#connection-detail")
    await expect(detail).to_contain_text("retrying in", timeout=5000)
    # Why, in words: SIGTERM ends the streams with server_restart (WS close 1012, SSE farewell).
    await expect(detail).to_contain_text("the server is restarting")
    await expect(page.get_by_role("button", name="Retry now")).to_be_visible()
    await expect(page.locator("#event-log li.trouble").last).to_contain_text("The server is restarting")
    await screenshot(page, f"badge-offline-{transport}")

    await restartable.start()  # the page comes back by its own back-off, no reload
    await expect(badge).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await expect(badge).to_have_text("Live")
    created = await http.post(
        "/products", json={"sku": "AFTER-1", "name": "After restart", "price": "5.00"}, headers=account.headers
    )
    await expect(page.locator(f"#product-{created.json()['id']}")).to_be_visible(timeout=1000)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_events_written_while_the_page_is_offline_arrive_on_resume(
    context: BrowserContext, restartable: Restartable, http: httpx.AsyncClient, transport: str
) -> None:
    config = {"transport": transport, "reconnect": {"floorMs": 200, "ceilingMs": 1000}}
    page, account = await signed_in_page(context, restartable, http, config)
    seller = await http.post("/sellers", json={"name": "Acme"}, headers=account.headers)
    product = await http.post(
        "/products", json={"sku": "MUG", "name": "Mug", "price": "12.99", "stock": 9}, headers=account.headers
    )
    await expect(page.locator(f"#product-{product.json()['id']}")).to_be_visible()
    last_seen = await page.evaluate("window.dropsync.client.lastEventId")

    await restartable.stop()
    await expect(page.locator("#connection-badge")).to_have_attribute("data-state", "offline", timeout=5000)
    # The network goes too (airplane mode): the page stays offline, retrying by back-off in vain.
    await context.set_offline(True)
    await restartable.start()
    writes = [
        await http.patch(f"/products/{product.json()['id']}", json={"stock": 0}, headers=account.headers),
        await http.post("/products", json={"sku": "LAMP", "name": "Lamp", "price": "24.90"}, headers=account.headers),
        await http.patch(f"/sellers/{seller.json()['id']}", json={"name": "Acme Ltd"}, headers=account.headers),
        await http.post(
            "/orders",
            json={"external_id": "7", "customer": {"name": "Ada"}, "items": [{"sku": "LAMP", "quantity": 1}]},
            headers=account.headers,
        ),
    ]
    assert all(write.status_code < 300 for write in writes), [write.text for write in writes]
    assert await connections_of(http, account) == [], "the page reconnected before the writes"
    history = (await http.get("/events/history", params={"after": last_seen}, headers=account.headers)).json()
    missed = [(event["id"], event["type"]) for event in history["events"]]

    await context.set_offline(False)  # `online`: the page reconnects at once and resumes
    await expect(page.locator("#connection-badge")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await expect(page.locator(f"#product-{product.json()['id']} td.stock")).to_contain_text("out")
    await expect(page.locator(f"#product-{writes[1].json()['id']}")).to_contain_text("LAMP")
    await expect(page.locator(f"#seller-{seller.json()['id']}")).to_contain_text("Acme Ltd")
    await expect(page.locator(f"#order-{writes[3].json()['id']}")).to_contain_text("Ada")
    await expect(page.locator(".toast", has_text="Out of stock: MUG")).to_be_visible()
    await expect(page.locator("#log-last")).to_have_text(f"last #{history['latest_id']}")
    logged = await page.locator("#event-log li.event").evaluate_all(
        "items => items.map(item => [Number(item.querySelector('.id').textContent.slice(1)),"
        " item.querySelector('.type').textContent])"
    )
    assert [tuple(entry) for entry in logged if entry[0] > last_seen] == missed  # each once, in order


async def test_a_client_that_gave_up_retries_on_demand(
    context: BrowserContext, restartable: Restartable, http: httpx.AsyncClient
) -> None:
    config = {"transport": "ws", "reconnect": {"floorMs": 100, "ceilingMs": 100, "maxAttempts": 2}}
    page, _account = await signed_in_page(context, restartable, http, config)
    await restartable.stop()
    detail = page.locator("#connection-detail")
    await expect(detail).to_contain_text("Not retrying", timeout=WAIT_MS)
    await restartable.start()
    await page.get_by_role("button", name="Retry now").click()
    await expect(page.locator("#connection-badge")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    await restartable.stop()
    await expect(detail).to_contain_text("Not retrying", timeout=WAIT_MS)
    await restartable.start()
    await context.set_offline(True)
    await context.set_offline(False)  # the browser's `online` event wakes it up too
    await expect(page.locator("#connection-badge")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
