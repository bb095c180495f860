"""Tabs of one browser share one stream: a leader tab holds it, the others get its events."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import WAIT_MS, open_dashboard, screenshot, wait_for_connections
from tests.conftest import Account, new_user
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_two_tabs_share_one_connection(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account, transport: str
) -> None:
    config = {"transport": transport}
    first = await open_dashboard(context, dashboard_server.url, account, config)
    second = await open_dashboard(context, dashboard_server.url, account, config)  # signs in again: own token
    assert await first.evaluate("window.dropsync.client.role") == "leader"
    assert await second.evaluate("window.dropsync.client.role") == "follower"
    [connection] = await wait_for_connections(api, account, 1)
    assert connection["transport"] == transport

    created = await api.post(
        "/products", json={"sku": "SHARED-1", "name": "Shared", "price": "1.00"}, headers=account.headers
    )
    for page in (first, second):
        await expect(page.locator(f"#product-{created.json()['id']}")).to_be_visible(timeout=1000)
    await screenshot(second, f"two-tabs-follower-{transport}")

    # The leader goes away: the other tab takes over the stream and misses nothing.
    await first.close()
    await second.wait_for_function("window.dropsync.client.role === 'leader'", timeout=WAIT_MS)
    await expect(second.locator("body")).to_have_attribute("data-connection", "live")
    await wait_for_connections(api, account, 1, gone={connection["connection_id"]})
    updated = await api.patch(f"/products/{created.json()['id']}", json={"price": "2.00"}, headers=account.headers)
    assert updated.status_code == 200, updated.text
    await expect(second.get_by_label("Price of SHARED-1")).to_have_value("2.00", timeout=1000)


async def test_two_users_in_one_browser_do_not_share(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    other = await new_user(api, "other")
    mine = await open_dashboard(context, dashboard_server.url, account)
    theirs = await open_dashboard(context, dashboard_server.url, other)
    assert await mine.evaluate("window.dropsync.client.role") == "leader"
    assert await theirs.evaluate("window.dropsync.client.role") == "leader"
    await wait_for_connections(api, account, 1)
    await wait_for_connections(api, other, 1)

    created = await api.post("/sellers", json={"name": "Only mine"}, headers=account.headers)
    await expect(mine.locator(f"#seller-{created.json()['id']}")).to_be_visible(timeout=1000)
    await expect(theirs.locator("#sellers-table")).not_to_contain_text("Only mine")
