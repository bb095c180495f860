"""A PostgreSQL and a Redis of the test's own, on spare ports, to stop, kill or freeze at will.

Never the machine's shared instances (5432, 6379): those serve every other test.
PostgreSQL runs as the ``postgres`` user from ``/usr/lib/postgresql/<version>/bin`` in a temporary
directory; ``redis-server`` from the PATH. Both are skipped (failed with ``CI=true``) when missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import IN_CI, free_port


def _require(what: str, present: bool) -> None:
    if not present:
        if IN_CI:
            pytest.fail(f"CI=true and {what} is missing")
        pytest.skip(f"{what} is missing")


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready within {timeout}s")


@dataclass
class OwnPostgres:
    """A throwaway PostgreSQL cluster: ``url`` while it runs; :meth:`stop`, :meth:`start`,
    :meth:`freeze` (SIGSTOP of every server process) and :meth:`thaw`."""

    folder: Path
    bin: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args]
        subprocess.run(command, check=check, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.folder / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop", check=False)

    def _pids(self) -> list[int]:
        postmaster = (self.folder / "data" / "postmaster.pid").read_text().split()[0]
        children = subprocess.run(["pgrep", "-P", postmaster], capture_output=True, text=True, check=False)
        return [int(postmaster), *(int(pid) for pid in children.stdout.split())]

    def freeze(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    binaries = _postgres_bin()
    _require("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)", binaries is not None)
    _require("the postgres user and runuser", shutil.which("runuser") is not None)
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="dropsync-own-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    initdb = [str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run(["runuser", "-u", "postgres", "--", *initdb], check=True, capture_output=True, timeout=120)
    server = OwnPostgres(folder=folder, bin=binaries, port=free_port())
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.thaw()
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class OwnRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self._answers, 10, "redis-server")

    def _answers(self) -> bool:
        probe = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False)
        return probe.stdout.strip() == b"PONG"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    _require("redis-server", shutil.which("redis-server") is not None)
    server = OwnRedis(port=free_port())
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.thaw()
        server.kill()
