"""nginx of the test's own, with the configuration of docs/deploy.md (read from the document, so
that what the docs show is what runs): its own prefix, ports, logs and pid in a temporary folder.

Only these are changed in the documented block: the two upstream addresses, the ``listen`` line
and the access log's path; each must be found, so that docs and test cannot drift apart.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import REPO, free_port

NGINX = Path(os.environ.get("DROPSYNC_TEST_NGINX", "/usr/sbin/nginx"))
DEPLOY_DOC = REPO / "docs" / "deploy.md"
DOC_UPSTREAMS = ("127.0.0.1:8001", "127.0.0.1:8002")
DOC_LISTEN = "listen 80;"
DOC_ACCESS_LOG = "/var/log/nginx/dropsync.access.log"


def nginx_binary() -> Path | None:
    if NGINX.exists():
        return NGINX
    found = shutil.which("nginx")
    return Path(found) if found else None


def documented_block() -> str:
    """The ``http { }`` part of docs/deploy.md: its first ```nginx block with ``upstream dropsync``."""
    for block in re.findall(r"```nginx\n(.*?)```", DEPLOY_DOC.read_text(), flags=re.DOTALL):
        if "upstream dropsync" in block:
            return str(block)
    raise AssertionError("docs/deploy.md has no ```nginx block with `upstream dropsync`")


def render(block: str, port: int, upstreams: tuple[int, int], access_log: Path) -> str:
    replacements = [
        (DOC_UPSTREAMS[0], f"127.0.0.1:{upstreams[0]}"),
        (DOC_UPSTREAMS[1], f"127.0.0.1:{upstreams[1]}"),
        (DOC_LISTEN, f"listen 127.0.0.1:{port};"),
        (DOC_ACCESS_LOG, str(access_log)),
    ]
    for old, new in replacements:
        assert block.count(old) == 1, f"docs/deploy.md: expected {old!r} once in the nginx block"
        block = block.replace(old, new)
    return block


@dataclass
class Nginx:
    """One nginx master (daemon off) in front of two upstream ports."""

    upstreams: tuple[int, int]
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dropsync-nginx-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.folder / "access.log"

    def config(self) -> str:
        folder = self.folder
        return "\n".join(
            [
                "daemon off;",
                "worker_processes 1;",
                f"pid {folder / 'nginx.pid'};",
                f"error_log {folder / 'error.log'} warn;",
                "events { worker_connections 1024; }",
                "http {",
                f"    client_body_temp_path {folder / 'body'};",
                f"    proxy_temp_path {folder / 'proxy'};",
                f"    fastcgi_temp_path {folder / 'fastcgi'};",
                f"    uwsgi_temp_path {folder / 'uwsgi'};",
                f"    scgi_temp_path {folder / 'scgi'};",
                render(documented_block(), self.port, self.upstreams, self.access_log),
                "}",
            ]
        )

    def start(self, binary: Path, timeout: float = 10.0) -> Nginx:
        self.folder.chmod(0o777)  # nginx's workers run as nobody when the tests run as root
        path = self.folder / "nginx.conf"
        path.write_text(self.config())
        args = [str(binary), "-p", str(self.folder), "-c", str(path), "-e", str(self.folder / "error.log")]
        checked = subprocess.run([*args, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, f"nginx -t failed:\n{checked.stderr}\n{path.read_text()}"
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.errors()}")
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not answer within {timeout}s:\n{self.errors()}")

    def statuses(self) -> list[tuple[str, int]]:
        """(path, status) of every request in the access log so far."""
        out = []
        for line in self.access_log.read_text().splitlines() if self.access_log.exists() else []:
            match = re.search(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3}) ', line)
            if match:
                out.append((match.group(1), int(match.group(2))))
        return out

    def errors(self) -> str:
        log = self.folder / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: let workers finish
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)
