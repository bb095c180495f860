"""A real headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, and helpers.

The browser is launched once per session; each test gets its own context (its own session
storage, Web Locks and BroadcastChannels). Without ``/usr/bin/chromium`` the tests skip with a
reason, except with ``CI=true``, where they fail. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import Account, new_user
from tests.support.servers import IN_CI, REPO, ServerProcess, sqlite_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"
WAIT_MS = 10_000
"""The longest any single browser wait may take."""
SEEN_WITHIN_MS = 1000
"""An action done on one device is seen on the other within this."""
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
TOOLS = REPO / "tests" / "browser"
AXE = TOOLS / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = pytest.mark.anyio


def require_chromium() -> None:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def dashboard_server() -> Iterator[ServerProcess]:
    """One server (SQLite) for the tests that do not restart it; they isolate themselves by user."""
    require_chromium()
    with sqlite_database() as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
async def api(dashboard_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dashboard_server.url, timeout=10) as http:
        yield http


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    created = await browser.new_context(viewport={"width": 1280, "height": 860})
    created.set_default_timeout(WAIT_MS)
    try:
        yield created
    finally:
        await created.close()


@asynccontextmanager
async def devices(
    browser: Browser, base_url: str, account: Account, *, phone_config: Mapping[str, object] | None = None
) -> AsyncIterator[tuple[Page, Page]]:
    """A desktop (1280 x 800) and a phone (390 x 844, touch) signed in as ``account`` at once, in two
    browser contexts (two devices: nothing shared). The phone uses WebSocket, as the app does."""
    desk_context = await browser.new_context(**DESKTOP)
    phone_context = await browser.new_context(**PHONE)
    try:
        for created in (desk_context, phone_context):
            created.set_default_timeout(WAIT_MS)
        desk = await open_dashboard(desk_context, base_url, account)
        phone = await open_dashboard(phone_context, base_url, account, phone_config or {"transport": "ws"})
        yield desk, phone
    finally:
        await desk_context.close()
        await phone_context.close()


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core from tests/browser/package-lock.json (``npm ci`` when it is not installed yet)."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            reason = "npm is missing: it installs axe-core for the accessibility checks (apt-get install -y npm)"
            if IN_CI:
                pytest.fail(f"CI=true and {reason}")
            pytest.skip(reason)
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=TOOLS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert installed.returncode == 0, f"npm ci in tests/browser failed:\n{installed.stdout}{installed.stderr}"
    return AXE


async def serious_accessibility_problems(page: Page, axe: Path) -> list[dict[str, Any]]:
    """axe-core's violations of impact "serious" or "critical" on the page, once its transitions and
    animations (toasts fading in, rows flashing) have finished: a colour half-way is no state to judge."""
    await page.wait_for_function("document.getAnimations().every((a) => a.playState !== 'running')")
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(axe))
    violations: list[dict[str, Any]] = await page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
          }));
        }"""
    )
    return [violation for violation in violations if violation["impact"] in {"serious", "critical"}]


async def open_dashboard(
    context: BrowserContext, base_url: str, account: Account, config: Mapping[str, object] | None = None
) -> Page:
    """A new tab on the dashboard, signed in as ``account``, its lists loaded and its stream live."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(WAIT_MS)
    if config:
        await page.add_init_script(f"window.DROPSYNC_DASHBOARD = {json.dumps(config)};")
    await page.goto(base_url + "/")
    await page.get_by_label("Username").fill(account.username)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    await expect(page.locator("body")).to_have_attribute("data-connection", "live", timeout=WAIT_MS)
    assert not errors, errors
    return page


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot under test-artifacts/browser/ (git-ignored) and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


async def connections_of(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    """The user's open stream connections, as the server counts them."""
    stats = await http.get("/ws/stats", headers=account.headers)
    assert stats.status_code == 200, stats.text
    connections: list[dict[str, Any]] = stats.json()["connections"]
    return connections


async def wait_for_connections(
    http: httpx.AsyncClient, account: Account, count: int, *, gone: Iterable[str] = (), within: float = 5.0
) -> list[dict[str, Any]]:
    """Poll /ws/stats until the user has exactly ``count`` connections, none of them ``gone`` (bounded)."""
    deadline = time.monotonic() + within
    gone = set(gone)
    while True:
        connections = await connections_of(http, account)
        done = len(connections) == count and not gone & {c["connection_id"] for c in connections}
        if done or time.monotonic() > deadline:
            assert done, (connections, gone)
            return connections
        await anyio.sleep(0.05)


@pytest.fixture
async def account(api: httpx.AsyncClient) -> Account:
    return await new_user(api, "browser")
