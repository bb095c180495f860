"""Logging set-up: our loggers and uvicorn's, as text or as one JSON object a line
(``log_format``), with secrets redacted from every line, tracebacks included:

- the value of a query parameter whose *decoded* name is ``access_token`` (``access%5Ftoken=``
  and ``%61ccess_token=`` reach the app as ``access_token`` too);
- ``Bearer <token>``;
- the password of a URL (``redis://:secret@host``, ``postgresql://user:secret@host/db``).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import unquote_plus

SECRET_PARAMETERS = frozenset({"access_token"})
REDACTED = "[redacted]"
_BEARER = re.compile(r"([Bb]earer\s+)[^\s&\"',]+")
_PARAMETER = re.compile(r"(?P<lead>^|[?&;\s\"'])(?P<name>[^=&;\s\"'?#]+)=(?P<value>[^&;\s\"'#]*)")
_URL_PASSWORD = re.compile(r"(?P<lead>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#\s@]*:)[^@/?#\s]+@")
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "litestar")


def redact(text: str) -> str:
    """``text`` with secret query values, ``Bearer`` tokens and URL passwords replaced."""
    if "=" in text:
        text = _PARAMETER.sub(_redact_parameter, text)
    if "earer" in text:
        text = _BEARER.sub(rf"\1{REDACTED}", text)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<lead>{REDACTED}@", text)
    return text


def _redact_parameter(match: re.Match[str]) -> str:
    name = match.group("name")
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    if name.strip().lower() not in SECRET_PARAMETERS:
        return match.group(0)
    return f"{match.group('lead')}{match.group('name')}={REDACTED}"


def redact_url(url: str) -> str:
    """A URL fit to print: its password replaced."""
    return _URL_PASSWORD.sub(rf"\g<lead>{REDACTED}@", url)


class RedactTokens(logging.Filter):
    """Rewrites a record's message (and its arguments, e.g. uvicorn's access-log path) without the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


class QuietReconnects(logging.Filter):
    """asyncpg's pool logs a WARNING with a traceback each time it fails to reconnect while the
    database is down; :mod:`app.outage` already says so once per outage: demote them to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Failed to restore the pool connection floor"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
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
    pool = logging.getLogger("asyncpg.pool")
    if not any(isinstance(existing, QuietReconnects) for existing in pool.filters):
        pool.addFilter(QuietReconnects())
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
                handler.addFilter(RedactTokens())
            if log_format == "json":
                if not isinstance(handler.formatter, JsonFormatter):
                    handler.setFormatter(JsonFormatter())
            elif not isinstance(handler.formatter, RedactingFormatter):
                handler.setFormatter(RedactingFormatter(handler.formatter))
