"""Fixtures of the compatibility matrix: what this machine has (nginx, Node and the pinned npm
packages, Chromium, curl), the scenarios' results (each scenario runs once, for every client),
and the page origin of the browser clients.

Without nginx, Node or Chromium the tests that need them skip with a one-line reason, except with
``CI=true``, where they fail (``.ci/run`` installs nginx and runs ``npm ci``; ``npm ci`` also runs
here when ``node_modules`` is missing and npm is installed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.compat.harness import HERE, NODE_MODULES, Run
from tests.compat.nginx import nginx_binary
from tests.support.servers import IN_CI, REPO

RESULTS = REPO / "test-artifacts" / "compat" / "matrix.json"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node_modules() -> Path | None:
    """The pinned npm packages, installed with `npm ci` if they are missing and npm is here."""
    if not (NODE_MODULES / "eventsource").exists() and shutil.which("npm") and shutil.which("node"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=IN_CI, timeout=300)
    return NODE_MODULES if (NODE_MODULES / "eventsource").exists() else None


@pytest.fixture(scope="session")
def nginx() -> Path | None:
    return nginx_binary()


@pytest.fixture(scope="session")
async def compat_browser() -> AsyncIterator[Browser | None]:
    if not CHROMIUM.exists():
        yield None
        return
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def runs() -> Iterator[dict[tuple[str, str, int], Run]]:
    """Scenario results by (path, restart, repetition), filled by the first test of each; written to
    test-artifacts/compat/matrix.json at the end (docs/clients.md shows them)."""
    done: dict[tuple[str, str, int], Run] = {}
    yield done
    if done:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        rows = [row for run in done.values() for row in run.table()]
        extra = {
            f"{run.path}/{run.restart}": {
                "seconds": round(run.seconds, 1),
                "phases": run.phases,
                "skipped": run.skipped,
            }
            for run in done.values()
        }
        RESULTS.write_text(json.dumps({"rows": rows, "runs": extra}, indent=1))
