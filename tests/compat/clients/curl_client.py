"""``curl -N``, the debugging client the docs show, reading its output line by line and running it
again with ``Last-Event-ID`` when it exits (curl does not reconnect). Usage: URL TOKEN.

Only curl talks to the server; this wrapper reads what curl prints: the status line (``-D -``
puts the headers on stdout) and the SSE fields, kept as raw as curl gives them."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.compat.clients.report import Reporter


def main(base_url: str, token: str) -> None:
    report = Reporter()
    while True:
        command = [
            "curl", "-N", "-sS", "-D", "-", "-H", f"Authorization: Bearer {token}",
            "-H", f"Last-Event-ID: {report.last_id or 0}", f"{base_url}/events",
        ]  # fmt: skip
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as curl:
            assert curl.stdout is not None
            fields: dict[str, str] = {}
            data: list[str] = []
            for raw in curl.stdout:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("HTTP/"):
                    status = int(line.split()[1])
                    if status != 200:
                        report.emit("status", status=status)
                elif line == "":
                    if data:
                        report.data("\n".join(data), fields.get("event", "message"), fields.get("id"))
                    fields, data = {}, []
                elif line.startswith("data: "):
                    data.append(line[len("data: ") :])
                elif not line.startswith(":") and ": " in line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
            report.emit("error", error=f"curl exited {curl.wait()}")
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
