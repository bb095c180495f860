"""sseclient-py over the standard library's HTTP response (its README's pattern with urllib),
reconnecting with ``Last-Event-ID`` (sseclient-py parses; it does not reconnect). Usage: URL TOKEN."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

import sseclient

from tests.compat.clients.report import Reporter


def main(base_url: str, token: str) -> None:
    report = Reporter()
    while True:
        request = urllib.request.Request(  # noqa: S310 - a loopback URL the test gives
            f"{base_url}/events",
            headers={
                "Accept": "text/event-stream",
                "Authorization": f"Bearer {token}",
                "Last-Event-ID": str(report.last_id or 0),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                for event in sseclient.SSEClient(response).events():
                    report.data(event.data, event.event, event.id)
        except urllib.error.HTTPError as exc:
            report.emit("status", status=exc.code)
        except (OSError, ValueError) as exc:  # refused, reset, timed out, or a body cut short
            report.emit("error", error=type(exc).__name__)
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
