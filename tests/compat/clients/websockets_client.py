"""The ``websockets`` library (its asyncio client), reconnecting with ``?last_event_id=`` after
any close. Usage: URL TOKEN."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlencode

import websockets

from tests.compat.clients.report import Reporter


async def main(base_url: str, token: str) -> None:
    report = Reporter()
    ws_base = base_url.replace("http://", "ws://", 1)
    while True:
        query = urlencode({"access_token": token, "last_event_id": report.last_id or 0})
        try:
            async with websockets.connect(f"{ws_base}/ws?{query}", open_timeout=10, compression=None) as socket:
                try:
                    async for frame in socket:
                        report.data(frame if isinstance(frame, str) else frame.decode())
                except websockets.ConnectionClosed:
                    pass
                report.emit("ws_close", code=socket.close_code or 1006, reason=socket.close_reason or "")
        except websockets.InvalidStatus as exc:
            report.emit("status", status=exc.response.status_code)
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            report.emit("error", error=type(exc).__name__)
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
