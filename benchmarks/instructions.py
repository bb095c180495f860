"""Instructions per request of REST endpoints, counted by valgrind (callgrind): the steady measure.

    .venv/bin/python benchmarks/instructions.py                       # every endpoint
    .venv/bin/python benchmarks/instructions.py patch notify          # some of them
    .venv/bin/python benchmarks/instructions.py --repo /tmp/before    # another checkout's app

``bench.py rest`` measures server CPU per request, which moves with the machine (cache and
scheduler effects, other tenants: the same commit gave a stock PATCH 3.4x to 4.0x ``/health`` in
one afternoon). This counts the instructions the application executes per request instead: the
app is called in process through ASGI (no socket, no uvicorn), so the count is what our code,
Litestar and SQLite do, and it repeats to within a fraction of a percent on any machine. Each
endpoint runs twice under callgrind (``SHORT`` and ``LONG`` requests after a warm-up); the
difference divided by ``LONG - SHORT`` is its instructions per request, without start-up. Printed
as one JSON line with the ratio of each endpoint to ``GET /health``.

It needs valgrind (Debian's package) and takes about a minute per endpoint.

``--cpu`` times the same in-process requests instead (CPU time of ``CPU_REQUESTS`` requests after
the warm-up, the best of ``CPU_ROUNDS`` fresh processes, in µs): seconds per endpoint instead of
minutes, and what the instructions cannot show (SQLite's system calls, cache effects), at the
price of a few per cent of noise. ``--against DIR`` measures another checkout in the same run,
taking turns with this one, for an A/B comparison:

    .venv/bin/python benchmarks/instructions.py --cpu patch notify --against /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHORT, LONG, WARM_UP = 100, 400, 200
CPU_REQUESTS, CPU_ROUNDS = 2000, 5
ENDPOINTS = ("health", "me", "product", "patch", "notify", "products", "orders")


class Caller:
    """Calls an ASGI app in process, as uvicorn would for one HTTP/1.1 request with its body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = [(b"host", b"bench")]
        if token:
            headers.append((b"authorization", b"Bearer " + token.encode()))
        if body is not None:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        route, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": route,
            "raw_path": route.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the app runs
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """The decoded answer of a request that must succeed."""
        return json.loads(await self.status(method, path, body, token) or b"null")

    async def status(self, method: str, path: str, body: Any = None, token: str | None = None) -> bytes:
        """The raw answer of a request that must succeed (a 2xx)."""
        status, answer = await self.request(method, path, body, token)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: {status} {answer[:200]!r}")
        return answer


async def lifespan(app: Any) -> Callable[[], Awaitable[None]]:
    """Start the app's lifespan; the coroutine that shuts it down."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    if (await outbox.get())["type"] != "lifespan.startup.complete":
        raise RuntimeError("the app did not start")

    async def shut_down() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return shut_down


async def serve_requests(endpoint: str, count: int) -> float:
    """In this process: start the app on a fresh SQLite file, then ``WARM_UP + count`` requests;
    the CPU seconds the ``count`` requests after the warm-up took."""
    sys.path.insert(0, os.getcwd())  # the checkout under test (its app, domain and streams)
    from app.config import Settings  # noqa: PLC0415 - from the checkout under test
    from app.main import create_app  # noqa: PLC0415

    folder = tempfile.mkdtemp(prefix="dropsync-instructions-")
    settings = Settings(database_url=f"sqlite:///{folder}/bench.db", rate_limit=False, log_level="warning")
    app = create_app(settings)
    shut_down = await lifespan(app)
    caller = Caller(app)
    account = {"username": "bench", "password": "bench-password-1"}
    await caller.ok("POST", "/auth/register", account)
    token = (await caller.ok("POST", "/auth/token", account))["access_token"]
    seller = (await caller.ok("POST", "/sellers", {"name": "s"}, token))["id"]
    products = [
        (await caller.ok(
            "POST", "/products",
            {"sku": f"S-{n}", "name": f"p {n}", "price": "9.99", "stock": 1000, "seller_id": seller},
            token,
        ))["id"]
        for n in range(60)
    ]  # fmt: skip
    for product in products[:50]:
        await caller.ok("POST", "/orders", {"items": [{"product_id": product, "quantity": 1}]}, token)
    # The measured requests send bodies encoded beforehand and check the status only: encoding
    # and decoding JSON here would be counted too.
    stock = [json.dumps({"stock": 1001 + parity}).encode() for parity in (0, 1)]
    titles = [json.dumps({"title": f"n{n}"}).encode() for n in range(WARM_UP + count)]
    requests: dict[str, Callable[[int], Awaitable[Any]]] = {
        "health": lambda n: caller.status("GET", "/health"),
        "me": lambda n: caller.status("GET", "/auth/me", None, token),
        "product": lambda n: caller.status("GET", f"/products/{products[1]}", None, token),
        "patch": lambda n: caller.status("PATCH", f"/products/{products[0]}", stock[n % 2], token),
        "notify": lambda n: caller.status("POST", "/notifications", titles[n], token),
        "products": lambda n: caller.status("GET", "/products?limit=50", None, token),
        "orders": lambda n: caller.status("GET", "/orders?limit=50", None, token),
    }
    call = requests[endpoint]
    for number in range(WARM_UP):
        await call(number)
    started = time.process_time()
    for number in range(WARM_UP, WARM_UP + count):
        await call(number)
    spent = time.process_time() - started
    await shut_down()
    shutil.rmtree(folder, ignore_errors=True)
    return spent


def instructions(python: str, cwd: Path, endpoint: str, count: int) -> int:
    """Instructions callgrind counted for a whole run of ``count`` requests (start-up included)."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        python, str(Path(__file__).resolve()), "--worker", endpoint, str(count),
    ]  # fmt: skip
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"{endpoint}: valgrind run failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def cpu_per_request(python: str, cwd: Path, endpoint: str) -> float:
    """CPU µs per request of ``endpoint`` in one fresh process of the checkout ``cwd``."""
    command = [python, str(Path(__file__).resolve()), "--worker", endpoint, str(CPU_REQUESTS)]
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{endpoint}: the worker failed:\n{run.stderr[-2000:]}")
    return float(run.stdout.split()[-1]) / CPU_REQUESTS * 1e6


def per_request(python: str, cwd: Path, endpoint: str) -> int:
    return round(
        (instructions(python, cwd, endpoint, LONG) - instructions(python, cwd, endpoint, SHORT)) / (LONG - SHORT)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "endpoints", nargs="*", metavar="ENDPOINT", help=f"any of {', '.join(ENDPOINTS)} (default: all)"
    )
    parser.add_argument("--repo", type=Path, help="another checkout (with its own .venv) to count")
    parser.add_argument("--cpu", action="store_true", help="time the requests (no valgrind)")
    parser.add_argument("--against", type=Path, help="with --cpu: another checkout, measured taking turns")
    parser.add_argument("--worker", nargs=2, metavar=("ENDPOINT", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import uvloop  # noqa: PLC0415 - the loop the server runs on

        print(uvloop.run(serve_requests(args.worker[0], int(args.worker[1]))))
        return 0
    unknown = [name for name in args.endpoints if name not in ENDPOINTS]
    if unknown:
        parser.error(f"unknown endpoint {unknown[0]!r}; choose from {', '.join(ENDPOINTS)}")
    if args.against and not args.cpu:
        parser.error("--against compares CPU times: add --cpu")
    missing = [path for path in (args.repo, args.against) if path and not (path / ".venv" / "bin" / "python").exists()]
    if missing:
        parser.error(f"{missing[0]} has no .venv (make -C {missing[0]} install-serving)")
    if args.cpu:
        return time_checkouts(
            [(args.repo or REPO).resolve(), *([args.against.resolve()] if args.against else [])], args.endpoints
        )
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    cwd = (args.repo or REPO).resolve()
    python = str(cwd / ".venv" / "bin" / "python")
    endpoints = list(dict.fromkeys(["health", *(args.endpoints or ENDPOINTS)]))
    counts = {endpoint: per_request(python, cwd, endpoint) for endpoint in endpoints}
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, cwd=cwd, capture_output=True, text=True, check=False).stdout
    print(
        json.dumps(
            {
                "scenario": "instructions",
                "server": {"repo": str(cwd), "commit": commit.strip(), "database": "sqlite"},
                "per_request": counts,
                "ratio_to_health": {name: round(count / counts["health"], 2) for name, count in counts.items()},
            }
        )
    )
    return 0


def time_checkouts(checkouts: list[Path], endpoints: list[str]) -> int:
    """``--cpu``: the best of :data:`CPU_ROUNDS` per endpoint and checkout, the checkouts taking turns."""
    names = list(dict.fromkeys(["health", *(endpoints or ENDPOINTS)]))
    best: dict[Path, dict[str, float]] = {checkout: {} for checkout in checkouts}
    for _ in range(CPU_ROUNDS):
        for name in names:
            for checkout in checkouts:
                spent = cpu_per_request(str(checkout / ".venv" / "bin" / "python"), checkout, name)
                best[checkout][name] = min(spent, best[checkout].get(name, spent))
    for checkout in checkouts:
        git = ["git", "rev-parse", "--short", "HEAD"]
        commit = subprocess.run(git, cwd=checkout, capture_output=True, text=True, check=False).stdout
        times = best[checkout]
        print(
            json.dumps(
                {
                    "scenario": "cpu_in_process",
                    "server": {"repo": str(checkout), "commit": commit.strip(), "database": "sqlite"},
                    "cpu_us_per_request": {name: round(value, 1) for name, value in times.items()},
                    "ratio_to_health": {name: round(value / times["health"], 2) for name, value in times.items()},
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
