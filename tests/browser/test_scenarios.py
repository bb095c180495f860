"""The old system's four scenarios, done by a person on two devices at once: a desktop (1280 x 800)
and a phone (390 x 844, touch, WebSocket), each signed in as the same user in its own browser
context. Each action is done in one and seen in the other within a second, without a reload:

1. add a product on the desktop: the phone shows it;
2. change stock on the phone: the desktop shows it (and a stale edit there gets a clear 412);
3. a new order arrives (``POST /orders``, or fetched from the store): both show it with a toast,
   and its workflow (process, ship, deliver) moves on either device;
4. a bulk update (feed import, bulk stock and price): both show every row.

Then the accessibility of both layouts (axe-core: no serious or critical violation), and
screenshots of each layout in test-artifacts/browser/.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import (
    SEEN_WITHIN_MS,
    devices,
    require_chromium,
    screenshot,
    serious_accessibility_problems,
)
from tests.conftest import Account, new_user
from tests.support.servers import REPO, ServerProcess, sqlite_database

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def scenario_server() -> Iterator[ServerProcess]:
    """A server for the scenarios (each test its own user), with feeds allowed on loopback."""
    require_chromium()
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, "DROPSYNC_FEED_ALLOW_PRIVATE_HOSTS": "true"}).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
def demo_server() -> Iterator[ServerProcess]:
    """A fresh server with the demo user, whose store has two orders waiting to be fetched."""
    require_chromium()
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, "DROPSYNC_DEMO": "true"}).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
async def http(scenario_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=scenario_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> Account:
    return await new_user(http, "scenario")


class Feed:
    """A seller's product feed served over HTTP on loopback; ``rows`` is what it answers."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"products": feed.rows}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Feed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def create_product(http: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    created = await http.post("/products", json=fields, headers=account.headers)
    assert created.status_code == 201, created.text
    product: dict[str, Any] = created.json()
    return product


async def logged_types(page: Page) -> list[str]:
    """The types of the recorded events in the page's event log, top to bottom."""
    types: list[str] = await page.locator("#event-log li.event .type").all_inner_texts()
    return types


async def assert_no_sideways_scroll(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


async def test_1_a_product_added_on_the_desktop_appears_on_the_phone(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        await desk.get_by_role("button", name="Add product").click()
        form = desk.get_by_role("form", name="Add a product")
        await form.get_by_label("SKU").fill("ACME-MUG")
        await form.get_by_label("Name").fill("Enamel camping mug")
        await form.get_by_label("Price").fill("12.99")
        await form.get_by_label("Stock").fill("40")
        started = time.monotonic()
        await form.get_by_role("button", name="Add", exact=True).click()

        # On the phone, a card with the product (from the stream), within a second.
        card = phone.locator("#products-table tr", has_text="ACME-MUG")
        await expect(card).to_be_visible(timeout=SEEN_WITHIN_MS)
        seen_after = time.monotonic() - started
        await expect(phone.get_by_label("Price of ACME-MUG")).to_have_value("12.99")
        await expect(phone.get_by_label("Stock of ACME-MUG")).to_have_value("40")
        await expect(phone.locator("#event-log")).to_contain_text("product_added")
        # ...and on the desktop too, from the same event (not from the request's answer).
        await expect(desk.get_by_label("Price of ACME-MUG")).to_have_value("12.99")
        await expect(desk.get_by_role("status").filter(has_text="ACME-MUG was added")).to_be_visible()
        assert seen_after < SEEN_WITHIN_MS / 1000 + 0.5
        await assert_no_sideways_scroll(phone)


async def test_2_stock_changed_on_the_phone_is_seen_everywhere(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    product = await create_product(http, user, sku="ACME-LAMP", name="Solar garden lamp", price="24.90", stock=12)
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        stock = phone.get_by_role("spinbutton", name="Stock of ACME-LAMP")
        await stock.fill("3")
        await stock.press("Enter")

        await expect(desk.get_by_label("Stock of ACME-LAMP")).to_have_value("3", timeout=SEEN_WITHIN_MS)
        await expect(desk.locator(f"#product-{product['id']} td.stock .pill")).to_have_text("low")
        await expect(desk.locator(".toast", has_text="Low stock: ACME-LAMP")).to_be_visible()
        await expect(phone.locator(".toast", has_text="Low stock: ACME-LAMP")).to_be_visible()
        fetched = (await http.get(f"/products/{product['id']}", headers=user.headers)).json()
        assert fetched["stock"] == 3
        assert fetched["version"] == 2
        # The event log reads in the order things happened: the change, then its details, then the alert.
        types = await logged_types(desk)
        assert types[-3:] == ["product_updated", "product_stock_changed", "stock_low"], types


async def test_2b_someone_else_changed_it_first_is_said_clearly(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    await create_product(http, user, sku="ACME-TENT", name="Two-person tent", price="89.00", stock=7)
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        # The desktop starts typing a new price...
        desk_price = desk.get_by_label("Price of ACME-TENT")
        await desk_price.fill("79.00")
        # ...while the phone changes the price and saves it first.
        phone_price = phone.get_by_label("Price of ACME-TENT")
        await phone_price.fill("85.00")
        await phone_price.press("Enter")
        # The desktop keeps what its user is typing, but marks the field as changed elsewhere.
        await expect(desk_price).to_have_class("edit stale", timeout=SEEN_WITHIN_MS)
        await expect(desk_price).to_have_value("79.00")

        await desk_price.press("Enter")  # If-Match: the version the edit started from -> 412
        alert = desk.get_by_role("alert").filter(has_text="Someone else changed ACME-TENT first")
        await expect(alert).to_be_visible()
        await expect(alert).to_contain_text("its price is now 85.00 USD. Your price 79.00 was not saved.")
        await screenshot(desk, "conflict-desktop")
        await expect(phone.get_by_label("Price of ACME-TENT")).to_have_value("85.00")

        await alert.get_by_role("button", name="Save mine anyway: price 79.00 for ACME-TENT").click()
        await expect(phone.get_by_label("Price of ACME-TENT")).to_have_value("79.00", timeout=SEEN_WITHIN_MS)
        await expect(alert).to_be_hidden()
        await expect(desk_price).to_have_value("79.00")
        await expect(desk_price).to_have_class("edit")


async def test_3_a_new_order_arrives_on_both_with_a_toast_and_moves_on_either(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    lamp = await create_product(http, user, sku="LAMP-7", name="Solar lamp", price="24.90", stock=12)
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        started = time.monotonic()
        created = await http.post(
            "/orders",
            json={
                "external_id": "A-100",
                "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
                "items": [{"sku": "LAMP-7", "quantity": 2}],
            },
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        order = created.json()
        for page in (desk, phone):
            await expect(page.locator(f"#order-{order['id']}")).to_contain_text("Ada Lovelace", timeout=SEEN_WITHIN_MS)
            await expect(page.locator(".toast", has_text="New order #A-100")).to_be_visible(timeout=SEEN_WITHIN_MS)
        assert time.monotonic() - started < 2 * SEEN_WITHIN_MS / 1000
        await screenshot(phone, "new-order-phone")

        # Process on the desktop: the phone sees the order move and the stock go down.
        await desk.get_by_role("button", name="Process order #A-100").click()
        await expect(phone.locator(f"#order-{order['id']} .pill")).to_have_text("processing", timeout=SEEN_WITHIN_MS)
        await expect(phone.get_by_label("Stock of LAMP-7")).to_have_value("10", timeout=SEEN_WITHIN_MS)

        # Ship on the phone, with its tracking: the desktop sees it shipped.
        await phone.get_by_role("button", name="Add shipment to order #A-100").click()
        shipment = phone.get_by_role("form", name="Shipment of order #A-100")
        await shipment.get_by_label("Carrier").fill("UPS")
        await shipment.get_by_label("Tracking number").fill("1Z999")
        await shipment.get_by_role("button", name="Ship order #A-100").click()
        desk_row = desk.locator(f"#order-{order['id']}")
        await expect(desk_row.locator(".pill")).to_have_text("shipped", timeout=SEEN_WITHIN_MS)
        await expect(desk_row).to_contain_text("UPS 1Z999")
        await expect(shipment).to_be_hidden()

        # Delivered, from the desktop.
        await desk.get_by_role("button", name="Mark order #A-100 delivered").click()
        await expect(phone.locator(f"#order-{order['id']} .pill")).to_have_text("delivered", timeout=SEEN_WITHIN_MS)
        history = (await http.get("/events/history", headers=user.headers)).json()
        statuses = [
            (event["data"]["old"], event["data"]["new"])
            for event in history["events"]
            if event["type"] == "order_status_changed"
        ]
        assert statuses == [("pending", "processing"), ("processing", "shipped"), ("shipped", "delivered")]
        stock = (await http.get(f"/products/{lamp['id']}", headers=user.headers)).json()["stock"]
        assert stock == 10

        # An order the stock cannot cover: processing is refused, in words, and nothing changes.
        big = await http.post(
            "/orders",
            json={"external_id": "A-101", "customer": {"name": "Big"}, "items": [{"sku": "LAMP-7", "quantity": 50}]},
            headers=user.headers,
        )
        assert big.status_code == 201, big.text
        await phone.get_by_role("button", name="Process order #A-101").click()
        refusal = phone.get_by_role("alert").filter(has_text="Order #A-101 was not processed")
        await expect(refusal).to_contain_text("not enough stock")
        await expect(desk.locator(f"#order-{big.json()['id']} .pill")).to_have_text("pending")
        await expect(desk.get_by_label("Stock of LAMP-7")).to_have_value("10")


async def test_3b_orders_fetched_from_the_store_on_the_phone_arrive_on_the_desktop(
    browser: Browser, demo_server: ServerProcess
) -> None:
    demo = Account(0, "demo", "demo-password", "")
    async with devices(browser, demo_server.url, demo) as (desk, phone):
        rows_before = await desk.locator("#orders-table tbody tr[data-id]").count()
        await phone.get_by_role("button", name="Fetch from the store").click()
        for page in (desk, phone):
            await expect(page.locator(".toast", has_text="New order #1003")).to_be_visible(timeout=SEEN_WITHIN_MS)
            await expect(page.locator(".toast", has_text="New order #1004")).to_be_visible(timeout=SEEN_WITHIN_MS)
        await expect(desk.locator("#orders-table tbody tr[data-id]")).to_have_count(rows_before + 2)
        await expect(phone.get_by_role("status").filter(has_text="2 new orders from the store.")).to_be_visible()
        await phone.get_by_role("button", name="Fetch from the store").click()
        await expect(phone.get_by_role("status").filter(has_text="No new orders in the store.")).to_be_visible()
        await screenshot(desk, "store-orders-desktop")


async def test_4_bulk_updates_show_on_both(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    with Feed() as feed:
        feed.rows = [
            {"sku": "GLX-HUB", "name": "7-port USB hub", "price": "29.50", "stock": 3},
            {"sku": "GLX-CABLE", "name": "USB-C cable 2 m", "price": "9.99", "stock": 250},
            {"sku": "GLX-DOCK", "name": "Laptop dock", "price": "119.00", "stock": 9},
        ]
        seller = await http.post(
            "/sellers", json={"name": "Globex Wholesale", "feed_url": feed.url}, headers=user.headers
        )
        assert seller.status_code == 201, seller.text
        async with devices(browser, scenario_server.url, user) as (desk, phone):
            # The feed import, started on the phone: the desktop shows every product.
            await phone.get_by_role("button", name="Import feed of Globex Wholesale").click()
            for sku in ("GLX-HUB", "GLX-CABLE", "GLX-DOCK"):
                await expect(desk.get_by_label(f"Price of {sku}")).to_be_visible(timeout=SEEN_WITHIN_MS)
            await expect(desk.locator(".toast", has_text="Feed imported: Globex Wholesale")).to_be_visible()
            await expect(desk.locator("#products-table")).to_contain_text("Globex Wholesale")
            await expect(phone.get_by_role("status").filter(has_text="3 added, 0 updated")).to_be_visible()

            # Bulk stock on the desktop: select all, set stock to 25.
            await desk.get_by_label("Select all products").check()
            await expect(desk.locator("#selected-count")).to_have_text("3 selected")
            await desk.get_by_label("Bulk action").select_option(label="Set stock to")
            await desk.get_by_label("Bulk value").fill("25")
            await desk.get_by_role("button", name="Apply").click()
            for sku in ("GLX-HUB", "GLX-CABLE", "GLX-DOCK"):
                await expect(phone.get_by_label(f"Stock of {sku}")).to_have_value("25", timeout=SEEN_WITHIN_MS)
            await expect(desk.locator("#selected-count")).to_have_text("Select all")

            # Bulk price on the phone, on two of them: -10 %.
            await phone.get_by_label("Select GLX-HUB").check()
            await phone.get_by_label("Select GLX-DOCK").check()
            await phone.get_by_label("Bulk action").select_option(label="Change price by %")
            await phone.get_by_label("Bulk value").fill("-10")
            await phone.get_by_role("button", name="Apply").click()
            await expect(desk.get_by_label("Price of GLX-HUB")).to_have_value("26.55", timeout=SEEN_WITHIN_MS)
            await expect(desk.get_by_label("Price of GLX-DOCK")).to_have_value("107.10", timeout=SEEN_WITHIN_MS)
            await expect(desk.get_by_label("Price of GLX-CABLE")).to_have_value("9.99")

            # The seller's feed changes and is imported again from the desktop: the feed's values win.
            feed.rows[1] = {"sku": "GLX-CABLE", "stock": 0}
            await desk.get_by_role("button", name="Import feed of Globex Wholesale").click()
            await expect(phone.get_by_label("Stock of GLX-CABLE")).to_have_value("0", timeout=SEEN_WITHIN_MS)
            await expect(phone.get_by_label("Price of GLX-HUB")).to_have_value("29.50", timeout=SEEN_WITHIN_MS)
            await expect(phone.locator(".toast", has_text="Out of stock: GLX-CABLE")).to_be_visible()
            await assert_no_sideways_scroll(phone)
            for page in (desk, phone):
                await page.evaluate("window.scrollTo(0, 0)")
            await screenshot(desk, "scenario-desktop")
            await screenshot(phone, "scenario-phone")
            await screenshot(phone, "scenario-phone-full", full_page=True)

            # Bulk delete on the desktop, confirmed: the phone's cards go.
            await desk.get_by_label("Select GLX-HUB").check()
            await desk.get_by_label("Select GLX-CABLE").check()
            await desk.get_by_label("Bulk action").select_option(label="Delete")
            await desk.get_by_role("button", name="Apply").click()
            await desk.get_by_role("button", name="Confirm delete 2 products").click()
            await expect(phone.locator("#products-table tr", has_text="GLX-HUB")).to_have_count(
                0, timeout=SEEN_WITHIN_MS
            )
            await expect(phone.locator("#products-table tr", has_text="GLX-CABLE")).to_have_count(0)
            await expect(phone.locator("#products-table tr", has_text="GLX-DOCK")).to_have_count(1)


async def test_settings_changed_on_one_device_show_on_the_other(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    await create_product(http, user, sku="KEEP-8", name="Eight left", price="5.00", stock=8)
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        await expect(desk.get_by_label("Low-stock threshold")).to_have_value("5")
        await expect(desk.locator("#products-table tr", has_text="KEEP-8").locator(".pill.low")).to_have_count(0)
        await phone.get_by_label("Low-stock threshold").fill("10")
        await phone.get_by_label("Default markup %").fill("45")
        await phone.get_by_role("button", name="Save settings").click()
        await expect(desk.get_by_label("Low-stock threshold")).to_have_value("10", timeout=SEEN_WITHIN_MS)
        await expect(desk.get_by_label("Default markup %")).to_have_value("45.00")
        # The new threshold makes 8 in stock "low" on both (no alert: the threshold moved, not the stock).
        for page in (desk, phone):
            await expect(page.locator("#products-table tr", has_text="KEEP-8").locator(".pill.low")).to_be_visible()
        await expect(desk.locator("#event-log")).to_contain_text("settings_updated")


async def test_delete_and_sync_one_product(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    await create_product(http, user, sku="ONE-1", name="One", price="1.00", stock=1)
    await create_product(http, user, sku="TWO-2", name="Two", price="2.00", stock=2)
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        await phone.get_by_role("button", name="Sync ONE-1 to the store").click()
        await expect(desk.locator("#products-table tr", has_text="ONE-1")).to_contain_text(
            "in store", timeout=SEEN_WITHIN_MS
        )
        await desk.get_by_role("button", name="Delete TWO-2").click()
        await desk.get_by_role("button", name="Confirm delete TWO-2").click()
        await expect(phone.locator("#products-table tr", has_text="TWO-2")).to_have_count(0, timeout=SEEN_WITHIN_MS)
        await expect(phone.locator("#event-log")).to_contain_text("product_deleted")


async def test_both_layouts_are_accessible(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account, axe_script: Path
) -> None:
    seller = (await http.post("/sellers", json={"name": "Acme Supplies"}, headers=user.headers)).json()
    for sku, stock in (("A11Y-1", 40), ("A11Y-2", 2), ("A11Y-3", 0)):
        await create_product(
            http, user, sku=sku, name=f"Product {sku}", price="9.99", stock=stock, seller_id=seller["id"]
        )
    await http.post(
        "/orders",
        json={"customer": {"name": "Grace Hopper"}, "items": [{"sku": "A11Y-1", "quantity": 1}]},
        headers=user.headers,
    )
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        await http.post("/notifications", json={"title": "Supplier delay", "message": "Monday"}, headers=user.headers)
        for page, name in ((desk, "desktop"), (phone, "phone")):
            await expect(page.locator(".toast", has_text="Supplier delay")).to_be_visible()
            await page.get_by_role("button", name="Add product").click()  # the form open too
            await page.get_by_label("Select A11Y-1").check()
            problems = await serious_accessibility_problems(page, axe_script)
            assert problems == [], f"{name}: {json.dumps(problems, indent=1)}"
            # No control without a name (axe checks this too; this says which one).
            unnamed = await page.evaluate(
                """() => [...document.querySelectorAll('button, input, select, textarea, [tabindex]')]
                  .filter((el) => el.offsetParent !== null)
                  .filter((el) => !(el.getAttribute('aria-label') || el.labels?.length || el.textContent.trim()
                                    || el.getAttribute('aria-labelledby')))
                  .map((el) => el.outerHTML.slice(0, 80))"""
            )
            assert unnamed == [], unnamed
        for page in (desk, phone):
            await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(desk, "layout-desktop")
        await screenshot(phone, "layout-phone")
        await screenshot(phone, "layout-phone-full", full_page=True)


async def test_toasts_never_cover_the_event_log(
    browser: Browser, scenario_server: ServerProcess, http: httpx.AsyncClient, user: Account
) -> None:
    async with devices(browser, scenario_server.url, user) as (desk, phone):
        for page in (desk, phone):
            await page.locator("#log").scroll_into_view_if_needed()
        for index in range(4):
            await http.post("/notifications", json={"title": f"Note {index}"}, headers=user.headers)
        for page, name in ((desk, "desktop"), (phone, "phone")):
            await expect(page.locator(".toast", has_text="Note 3")).to_be_visible()
            await page.wait_for_function(
                """() => {
                  const a = document.getElementById('toasts').getBoundingClientRect();
                  const b = document.getElementById('log').getBoundingClientRect();
                  return !(a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom);
                }""",
                timeout=2000,
            )
            # Events in the log in the order they happened: ids go up from top to bottom.
            ids = await page.locator("#event-log li.event .id").all_inner_texts()
            numbers = [int(text.lstrip("#")) for text in ids]
            assert numbers == sorted(numbers), (name, numbers)
            await screenshot(page, f"toasts-and-log-{name}")


async def test_the_served_client_is_the_package_file(scenario_server: ServerProcess, http: httpx.AsyncClient) -> None:
    served = await http.get("/static/dropsync.js")
    assert served.status_code == 200
    assert served.content == (REPO / "clients" / "js" / "dropsync.js").read_bytes()
