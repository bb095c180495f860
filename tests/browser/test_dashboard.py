"""The dashboard at / in a real browser: sign-in, live tables, toasts, the phone layout."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, expect

from tests.browser.conftest import WAIT_MS, open_dashboard, screenshot
from tests.conftest import Account
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio


async def test_sign_in_shows_the_lists(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    seller = (await api.post("/sellers", json={"name": "Acme Supplies"}, headers=account.headers)).json()
    await api.post(
        "/products",
        json={"sku": "MUG-1", "name": "Camping mug", "price": "12.99", "stock": 40, "seller_id": seller["id"]},
        headers=account.headers,
    )
    page = await context.new_page()
    await page.goto(dashboard_server.url + "/")
    await page.get_by_label("Username").fill(account.username)
    await page.get_by_label("Password").fill("not-the-password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await screenshot(page, "signin-error")

    await page.get_by_label("Password").fill(account.password)
    await page.get_by_label("Password").press("Enter")  # the keyboard works as well as the mouse
    await expect(page.get_by_text(f"Signed in as {account.username}")).to_be_visible()
    products = page.locator("#products-table")
    await expect(products.locator("tr", has_text="MUG-1")).to_contain_text("Acme Supplies")
    await expect(page.get_by_label("Price of MUG-1")).to_have_value("12.99")
    await expect(page.locator("#sellers-table")).to_contain_text("Acme Supplies")
    await expect(page.locator("#connection-badge")).to_have_text("Live")
    assert await page.evaluate("sessionStorage.getItem('dropsync.token')")

    await page.reload()  # the token in sessionStorage keeps the tab signed in
    await expect(products.locator("tr", has_text="MUG-1")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('dropsync.token')") is None


async def test_a_write_through_the_api_appears_within_a_second(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    page = await open_dashboard(context, dashboard_server.url, account)
    started = time.monotonic()
    created = await api.post(
        "/products",
        json={"sku": "LAMP-7", "name": "Solar lamp", "price": "24.90", "stock": 12},
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    row = page.locator(f"#product-{created.json()['id']}")
    await expect(row.get_by_label("Price of LAMP-7")).to_have_value("24.90", timeout=1000)
    appeared = time.monotonic() - started

    # Updated in place: the very same row element, with no reload of the page or the list.
    await row.evaluate("row => { row.dataset.marker = 'kept'; window.notReloaded = true; }")
    await api.patch(f"/products/{created.json()['id']}", json={"price": "19.50"}, headers=account.headers)
    await expect(row.get_by_label("Price of LAMP-7")).to_have_value("19.50", timeout=1000)
    assert await row.get_attribute("data-marker") == "kept"
    assert await page.evaluate("window.notReloaded === true")

    order = await api.post(
        "/orders",
        json={
            "external_id": "A-100",
            "customer": {"name": "Ada Lovelace"},
            "items": [{"sku": "LAMP-7", "quantity": 2}],
        },
        headers=account.headers,
    )
    assert order.status_code == 201, order.text
    await expect(page.locator(f"#order-{order.json()['id']}")).to_contain_text("Ada Lovelace", timeout=1000)
    await expect(page.locator(".toast", has_text="New order #A-100")).to_be_visible(timeout=1000)
    await expect(page.locator("#event-log")).to_contain_text("order_created")
    print(f"first write visible after {appeared * 1000:.0f} ms")  # noqa: T201 - shown with -s


async def test_stock_out_and_notifications_show_toasts(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    seller = (await api.post("/sellers", json={"name": "Globex Wholesale"}, headers=account.headers)).json()
    for sku, name, price, stock in [
        ("GLX-HUB", "7-port USB hub", "29.50", 3),
        ("GLX-CABLE", "USB-C cable 2 m", "9.99", 250),
        ("GLX-DOCK", "Laptop dock", "119.00", 9),
    ]:
        await api.post(
            "/products",
            json={"sku": sku, "name": name, "price": price, "stock": stock, "seller_id": seller["id"]},
            headers=account.headers,
        )
    page = await open_dashboard(context, dashboard_server.url, account)
    hub = (await api.get("/products", params={"q": "GLX-HUB"}, headers=account.headers)).json()["items"][0]

    await api.patch(f"/products/{hub['id']}", json={"stock": 0}, headers=account.headers)
    toast = page.locator(".toast", has_text="Out of stock: GLX-HUB")
    await expect(toast).to_be_visible(timeout=2000)
    await expect(toast).to_contain_text("7-port USB hub is sold out.")
    await expect(page.locator(f"#product-{hub['id']} td.stock")).to_contain_text("out")

    await api.post(
        "/notifications",
        json={"level": "warning", "title": "Supplier delay", "message": "Globex ships on Monday"},
        headers=account.headers,
    )
    await expect(page.locator(".toast", has_text="Supplier delay")).to_contain_text("Globex ships on Monday")
    await screenshot(page, "dashboard-desktop-toasts")

    # A toast can be dismissed from the keyboard.
    await page.get_by_role("button", name="Dismiss: Supplier delay").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".toast", has_text="Supplier delay")).to_have_count(0)


async def test_the_badge_shows_live_for_three_seconds_then_stays_visible(
    context: BrowserContext, dashboard_server: ServerProcess, account: Account
) -> None:
    page = await open_dashboard(context, dashboard_server.url, account)
    badge = page.locator("#connection-badge")
    await expect(badge).to_have_text("Live")
    await expect(badge).to_have_class("badge shown")
    await expect(badge).to_have_css("background-color", "rgb(23, 105, 47)")
    # After three seconds a quieter "Live" stays: the state is always visible.
    await expect(badge).to_have_class("badge shown settled", timeout=3000 + 1500)
    await expect(badge).to_be_visible()
    await expect(badge).to_have_text("Live")
    await expect(badge).to_have_css("color", "rgb(23, 105, 47)")
    assert await badge.get_attribute("data-state") == "live"


async def test_resync_required_reloads_the_lists(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    created = await api.post(
        "/products", json={"sku": "TENT-2", "name": "Two-person tent", "price": "89.00"}, headers=account.headers
    )
    page = await open_dashboard(context, dashboard_server.url, account)
    row = page.locator(f"#product-{created.json()['id']}")
    await expect(row).to_be_visible()
    # Make the page's copy diverge, then resume from an id the server has never recorded:
    # the server answers resync_required and the page reloads its lists.
    await page.evaluate(f"window.dropsync.products.remove({created.json()['id']})")
    await expect(row).to_have_count(0)
    await page.evaluate("const c = window.dropsync.client; c.lastEventId = 1e9; c.reconnect();")
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#event-log")).to_contain_text("resync_required")
    assert await page.evaluate("window.dropsync.client.lastEventId") < 1e9


async def test_phone_sized_screen(
    browser: Browser, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    seller = (await api.post("/sellers", json={"name": "Acme Supplies"}, headers=account.headers)).json()
    for index, (sku, name, stock) in enumerate(
        [("ACME-MUG", "Enamel camping mug", 40), ("ACME-LAMP", "Solar garden lamp", 4), ("ACME-TENT", "Tent", 0)]
    ):
        await api.post(
            "/products",
            json={"sku": sku, "name": name, "price": f"{12 + index}.99", "stock": stock, "seller_id": seller["id"]},
            headers=account.headers,
        )
    await api.post(
        "/orders",
        json={
            "external_id": "1001",
            "customer": {"name": "Grace Hopper"},
            "items": [{"sku": "ACME-MUG", "quantity": 1}],
        },
        headers=account.headers,
    )
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone.set_default_timeout(WAIT_MS)
    try:
        page = await open_dashboard(phone, dashboard_server.url, account)
        await expect(page.locator("#orders-table")).to_contain_text("Grace Hopper")
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        await api.post("/notifications", json={"title": "Hello from the phone test"}, headers=account.headers)
        await expect(page.locator(".toast", has_text="Hello from the phone test")).to_be_visible()
        await screenshot(page, "dashboard-phone", full_page=True)
    finally:
        await phone.close()


FAKE_NOTIFICATIONS = """
window.shown = [];
window.Notification = class {
  constructor(title, options) { window.shown.push({ title, body: options.body }); }
  static async requestPermission() { window.Notification.permission = 'granted'; return 'granted'; }
};
window.Notification.permission = 'default';
// As if the user had switched to another tab: system notifications are for pages in the background.
Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' });
"""


async def test_system_notifications_once_allowed_while_in_the_background(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    await context.add_init_script(FAKE_NOTIFICATIONS)  # headless Chromium shows none: count them instead
    page = await open_dashboard(context, dashboard_server.url, account)
    await page.get_by_role("button", name="Enable notifications").click()
    await expect(page.get_by_role("button", name="Enable notifications")).to_be_hidden()
    await api.post("/notifications", json={"title": "Lunch", "message": "in 5"}, headers=account.headers)
    await expect(page.locator(".toast", has_text="Lunch")).to_be_visible()
    assert await page.evaluate("window.shown") == [{"title": "Lunch", "body": "in 5"}]
