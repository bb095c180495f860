"""The JavaScript client package (clients/js): its own Node tests, run from pytest so `make test` runs them.

The Node tests (``node --test``) run the client without a DOM against a real server started from
this repository with this interpreter. Without Node the tests skip with one line, except with
``CI=true``, where they fail. TypeScript (for the declarations check) comes from the package's
lock file: ``npm ci`` runs when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from domain.events import RECORDED_TYPES
from tests.support.servers import IN_CI, REPO

PACKAGE = REPO / "clients" / "js"
NODE_TIMEOUT_S = 240


def tool(name: str) -> str:
    """The path of ``name``, or skip (fail in CI) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (Node.js 20+ and npm: apt-get install -y nodejs npm)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return found


def node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    return int(version.strip().lstrip("v").split(".")[0])


def websocket_flags(node: str) -> list[str]:
    """Node 22 has a global WebSocket; 20 and 21 need the flag (React Native has one: so must the tests)."""
    major = node_major(node)
    if major < 20:
        pytest.fail(f"Node.js {major} is too old for the client's tests: 20 or later is needed")
    return ["--experimental-websocket"] if major < 22 else []


def install_dev_dependencies() -> None:
    """``npm ci`` in clients/js when its lock file's TypeScript is not installed (idempotent)."""
    if (PACKAGE / "node_modules" / "typescript" / "package.json").exists():
        return
    npm = tool("npm")
    installed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, f"npm ci in clients/js failed:\n{installed.stdout}{installed.stderr}"


@pytest.mark.timeout(NODE_TIMEOUT_S + 60)
def test_node_tests_of_the_client_pass() -> None:
    node = tool("node")
    flags = websocket_flags(node)
    install_dev_dependencies()
    files = sorted(str(path.relative_to(PACKAGE)) for path in (PACKAGE / "test").glob("*.test.js"))
    assert files, "no Node test files in clients/js/test"
    result = subprocess.run(
        [node, *flags, "--test", *files],
        cwd=PACKAGE,
        env={**os.environ, "DROPSYNC_TEST_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    counts = dict(re.findall(r"^# (tests|pass|fail|cancelled|skipped) (\d+)$", output, re.MULTILINE))
    assert result.returncode == 0, f"node --test failed ({counts}):\n{output[-20000:]}"
    assert int(counts.get("tests", "0")) >= 20, counts
    assert counts.get("fail") == "0", counts
    assert counts.get("skipped") == "0", f"Node tests were skipped: {counts}"


def test_the_dashboard_serves_the_package_file() -> None:
    """One copy: /static/dropsync.js is a link to the package's file, which the wheel copies."""
    served = REPO / "app" / "static" / "dropsync.js"
    assert served.is_symlink()
    assert served.resolve() == (PACKAGE / "dropsync.js").resolve()


def test_the_client_knows_every_recorded_event_type() -> None:
    node = tool("node")
    script = "import('./dropsync.js').then((m) => console.log(JSON.stringify(m.EVENT_TYPES)))"
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == set(RECORDED_TYPES)


def test_the_package_has_no_runtime_dependencies() -> None:
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["type"] == "module"
    assert "dependencies" not in manifest
    lock = json.loads((PACKAGE / "package-lock.json").read_text())
    assert lock["packages"][""].get("devDependencies") == manifest["devDependencies"]
    assert all(entry.get("dev") for path, entry in lock["packages"].items() if path), "a runtime dependency crept in"


def test_the_readme_shows_the_declared_exports() -> None:
    readme = (PACKAGE / "README.md").read_text()
    declarations = (PACKAGE / "dropsync.d.ts").read_text()
    for name in re.findall(r"^export declare (?:class|const|function) (\w+)", declarations, re.MULTILINE):
        assert name in readme, f"{name} is exported but the README does not mention it"
    assert Path(PACKAGE / "dropsync.d.ts").stat().st_size > 1000
