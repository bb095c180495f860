"""Logging set-up: one format for our loggers and uvicorn's, with access tokens redacted everywhere."""

from __future__ import annotations

import logging
import re

_TOKEN_IN_TEXT = re.compile(r"(access_token=|[Bb]earer\s+)[^\s&\"']+")


def redact(text: str) -> str:
    """``access_token=…`` and ``Bearer …`` with the secret replaced by ``[redacted]``."""
    return _TOKEN_IN_TEXT.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message (and its arguments, e.g. uvicorn's access-log path) without the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def configure_logging(level: str) -> None:
    """Install the redaction filter on every handler we and uvicorn log through (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dropsync").setLevel(level.upper())
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "litestar"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
                handler.addFilter(RedactTokens())
