"""Logging set-up: our loggers and uvicorn's, as text or as one JSON object a line
(``log_format``), with access tokens redacted from every line, tracebacks included."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_TOKEN_IN_TEXT = re.compile(r"(access_token=|[Bb]earer\s+)[^\s&\"']+")
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "litestar")


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


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message`` (and ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, ensure_ascii=False))


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's own formatter and redacts what it produced (tracebacks included)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def configure_logging(level: str, log_format: str = "text") -> None:
    """Install redaction (and the JSON format) on every handler we and uvicorn log through; idempotent."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dropsync").setLevel(level.upper())
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
                handler.addFilter(RedactTokens())
            if log_format == "json":
                if not isinstance(handler.formatter, JsonFormatter):
                    handler.setFormatter(JsonFormatter())
            elif not isinstance(handler.formatter, RedactingFormatter):
                handler.setFormatter(RedactingFormatter(handler.formatter))
