"""What every Python driver prints: one JSON object a line on stdout, as things happen.

``event`` (a recorded event: ``id``, ``type``, and for SSE the ``sse_id`` and ``sse_event`` fields
as the client library parsed them), ``message`` (a connection message: ``type``, ``code``),
``empty`` (the library handed over a message without data), ``status`` (a non-200 answer),
``closed`` (the client stopped for good), ``ws_close`` (``code``, ``reason``), ``error``.
The harness (tests/compat/harness.py) reads these lines; the drivers judge nothing themselves.
"""

from __future__ import annotations

import json
import sys
from typing import Any


class Reporter:
    def __init__(self) -> None:
        self.last_id: int | None = None

    def emit(self, kind: str, **fields: Any) -> None:
        sys.stdout.write(json.dumps({"kind": kind, **fields}) + "\n")
        sys.stdout.flush()

    def data(self, data: str, sse_event: str | None = None, sse_id: str | None = None) -> None:
        """A dispatched message: an envelope, or (a framing defect) nothing."""
        if data == "":
            self.emit("empty", sse_event=sse_event)
            return
        envelope = json.loads(data)
        event_id = envelope.get("id")
        if isinstance(event_id, int):
            self.last_id = event_id
            self.emit("event", id=event_id, type=envelope["type"], sse_event=sse_event, sse_id=sse_id)
        else:
            code = (envelope.get("data") or {}).get("code")
            self.emit("message", type=envelope["type"], code=code, sse_event=sse_event)
