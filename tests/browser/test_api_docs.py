"""The API documentation pages work with the network off, and Swagger UI's Authorize works.

Every request of the browser that does not go to the loopback server is aborted and recorded: the
pages must render from the app's own assets, and must not even try to reach anything else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Route, expect

from tests.browser.conftest import screenshot
from tests.conftest import Account
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


class Offline:
    """Aborts every request that leaves the machine, and remembers it."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self.served: list[str] = []

    async def handle(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            self.served.append(url)
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort("internetdisconnected")


@pytest.fixture
async def offline(context: BrowserContext) -> Offline:
    network = Offline()
    await context.route("**/*", network.handle)
    return network


async def open_page(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return page, errors


async def test_swagger_ui_renders_offline_and_tries_a_request(
    context: BrowserContext, offline: Offline, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    page, errors = await open_page(context, f"{dashboard_server.url}/schema/swagger")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("dropsync")
    create = page.locator("#operation-products-createProduct, #operations-products-createProduct").first
    await expect(create).to_be_visible()

    # Authorize with a bearer token, then "Try it out" on createProduct with its example body.
    await page.get_by_role("button", name="Authorize").first.click()
    bearer = page.locator(".dialog-ux .auth-container", has_text="bearerAuth")
    await bearer.locator("#auth-bearer-value").fill(account.token)
    await bearer.get_by_role("button", name="Apply credentials").click()
    await bearer.get_by_role("button", name="Close").click()

    await create.locator(".opblock-summary").click()
    await create.get_by_role("button", name="Try it out").click()
    body = create.locator("textarea.body-param__text")
    await expect(body).to_contain_text('"sku": "ACME-MUG"')
    await expect(body).to_contain_text('"price": "12.99"')
    await create.get_by_role("button", name="Execute").click()
    status = create.locator(".live-responses-table .response .response-col_status").first
    await expect(status).to_have_text("201")
    await screenshot(page, "swagger-try-it-out")

    products = await api.get("/products", params={"q": "ACME-MUG"}, headers=account.headers)
    assert [product["sku"] for product in products.json()["items"]] == ["ACME-MUG"]
    assert not errors, errors
    assert offline.blocked == []
    assert any("/schema/assets/swagger-ui/swagger-ui-bundle.js" in url for url in offline.served)


async def test_redoc_renders_offline(
    context: BrowserContext, offline: Offline, dashboard_server: ServerProcess
) -> None:
    page, errors = await open_page(context, f"{dashboard_server.url}/schema/redoc")
    await expect(page.locator("h1", has_text="dropsync")).to_be_visible()
    await expect(page.locator("h2", has_text="Add a product")).to_be_visible()
    await expect(page.get_by_text("bearerAuth").first).to_be_attached()
    await screenshot(page, "redoc")
    assert not errors, errors
    # ReDoc's "API docs by Redocly" attribution tries its logo from Redocly's CDN and hides the image
    # when it fails; it is the only thing ReDoc asks of the outside world.
    assert set(offline.blocked) <= {REDOCLY_LOGO}
    assert any("/schema/assets/redoc/redoc.standalone.js" in url for url in offline.served)
