"""httpx-sse, as its README uses it (``connect_sse`` + ``iter_sse``), reconnecting with
``Last-Event-ID`` (httpx-sse has no reconnection of its own). Usage: URL TOKEN."""

from __future__ import annotations

import sys
import time

import httpx
from httpx_sse import connect_sse

from tests.compat.clients.report import Reporter


def main(base_url: str, token: str) -> None:
    report = Reporter()
    retry_s = 0.5
    with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client:
        while True:
            headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(report.last_id or 0)}
            try:
                with connect_sse(client, "GET", f"{base_url}/events", headers=headers) as source:
                    if source.response.status_code != 200:
                        report.emit("status", status=source.response.status_code)
                    else:
                        for sse in source.iter_sse():
                            if sse.retry is not None:
                                retry_s = sse.retry / 1000
                            report.data(sse.data, sse.event, sse.id)
            except httpx.HTTPError as exc:
                report.emit("error", error=type(exc).__name__)
            time.sleep(retry_s)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
