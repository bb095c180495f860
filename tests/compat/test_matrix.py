"""The compatibility matrix (issue 10): each client, written by someone else, against a real
server, directly and through nginx (docs/deploy.md's configuration), across a restart by SIGTERM
and by SIGKILL — connect and authenticate, typed events with ids, resume with no gap and no
duplicate. The results are in docs/clients.md (and test-artifacts/compat/matrix.json after a run).

Each (path, restart) scenario runs once, with every client at once (tests/compat/harness.py);
the tests below are its verdicts, one per client.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.compat.conftest import unavailable
from tests.compat.harness import (
    CLIENTS,
    ClientSpec,
    Driver,
    PageDriver,
    ProcessDriver,
    Run,
    missing_for,
    page_origin,
    run_scenario,
)
from tests.support.servers import sqlite_database

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.compat, pytest.mark.timeout(300)]

PATHS = ["direct", "nginx"]
RESTARTS = ["sigterm", "sigkill"]


async def scenario(
    runs: dict[tuple[str, str, int], Run],
    path: str,
    restart: str,
    repeat: int,
    browser: Browser | None,
    nginx: Path | None,
    node_modules: Path | None,
) -> Run:
    key = (path, restart, repeat)
    if key not in runs:
        if path == "nginx" and nginx is None:
            unavailable("nginx is not installed (apt-get install -y nginx)")
        skipped = {}
        with page_origin() as origin, sqlite_database() as database_url:
            drivers: list[Driver] = []
            for spec in CLIENTS:
                reason = missing_for(spec, browser is not None)
                if reason is not None:
                    skipped[spec.name] = reason
                elif spec.runner == "chromium":
                    assert browser is not None
                    drivers.append(PageDriver(spec, browser, origin))
                else:
                    drivers.append(ProcessDriver(spec))
            runs[key] = await run_scenario(path, restart, drivers, skipped, database_url, origin, nginx)
    return runs[key]


@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("spec", CLIENTS, ids=[spec.id for spec in CLIENTS])
async def test_client(
    spec: ClientSpec,
    path: str,
    restart: str,
    runs: dict[tuple[str, str, int], Run],
    compat_browser: Browser | None,
    nginx: Path | None,
    node_modules: Path | None,
    request: pytest.FixtureRequest,
) -> None:
    # With `pytest --count N` every repetition runs its own scenarios.
    callspec = getattr(request.node, "callspec", None)
    repeat = int(callspec.params.get("__pytest_repeat_step_number", 0)) if callspec is not None else 0
    run = await scenario(runs, path, restart, repeat, compat_browser, nginx, node_modules)
    if spec.name in run.skipped:
        unavailable(f"{spec.name}: {run.skipped[spec.name]}")
    seen = run.seen[spec.name]
    summary = seen.summary(run.written)
    # connect and authenticate; every event once, in order, typed, across the restart
    assert seen.connects >= 2, summary  # connected, and connected again after the restart
    assert seen.ids == list(range(1, run.written + 1)), summary
    assert seen.mistyped == [], seen.mistyped
    # the framing every client parses; no EventSource stopped for good; no error answers
    assert summary["empty_messages"] == 0, summary
    assert summary["closed_for_good"] == 0, summary
    assert summary["non_200"] == [], summary
    if restart == "sigterm":  # told why, the documented way
        assert "server_restart" in summary["farewells"], summary
        if spec.transport == "ws":
            assert (1012, "service restart") in [tuple(close) for close in summary["ws_closes"]], summary
    if path == "nginx":  # the rolling restart of docs/deploy.md: nginx never answered an error
        streams = {"sse": "/events", "ws": "/ws"}
        assert any(uri == streams[spec.transport] for uri, _ in run.nginx_statuses), run.nginx_statuses
        errors = [(uri, status) for uri, status in run.nginx_statuses if status >= 500]
        assert errors == [], errors
