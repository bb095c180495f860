"""Settings: ``litestar.toml`` decoded strictly, each key overridable by ``DROPSYNC_<KEY>``.

Guarantee: a typo'd key, a value of the wrong type or an out-of-range value raises
:class:`ConfigError` whose message is one line naming the setting (and the environment variable
when that is where the value came from). Nothing is half-loaded.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from app.logs import redact_url
from domain.store.tokens import parse_keys

ENV_PREFIX = "DROPSYNC_"
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "litestar.toml"

# Seconds: positive and finite (a day at most; "inf" would disable a timeout silently).
PositiveFloat = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class ConfigError(Exception):
    """A setting is missing, unknown or has a bad value; the message names it in one line."""


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Every setting of a dropsync process; see ``litestar.toml`` for what each one means."""

    database_url: str = "sqlite:///./dropsync.db"
    broker_url: str = "memory://"
    broker_namespace: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "dropsync"
    heartbeat_s: PositiveFloat = 15.0
    allow_signup: bool = True
    auto_migrate: bool = True
    demo: bool = False
    rate_limit: bool = True
    rate_limit_auth_per_minute: PositiveInt = 30
    rate_limit_writes_per_second: PositiveInt = 50
    token_ttl_s: PositiveInt = 30 * 24 * 3600
    retention_days: PositiveInt = 7
    retention_min_events: PositiveInt = 10_000
    retention_check_every_s: PositiveFloat = 3600.0
    connection_queue_size: Annotated[int, msgspec.Meta(ge=16)] = 2000
    send_timeout_s: PositiveFloat = 10.0
    token_check_s: PositiveFloat = 30.0
    sse_retry_ms: PositiveInt = 3000
    max_body_bytes: PositiveInt = 1024 * 1024
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    database_timeout_s: PositiveFloat = 30.0
    cors_allow_origins: tuple[Annotated[str, msgspec.Meta(pattern=r"^(\*|https?://[^/\s]+)$")], ...] = ()
    http_max_head_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = 16 * 1024
    http_head_timeout_s: PositiveFloat = 10.0
    http_body_timeout_s: PositiveFloat = 30.0
    http_keep_alive_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 5
    max_connections: PositiveInt = 10_000
    forwarded_allow_ips: str = "127.0.0.1"
    public_origins: tuple[Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")], ...] = ()
    feed_timeout_s: PositiveFloat = 10.0
    feed_max_bytes: PositiveInt = 5 * 1024 * 1024
    # a row records up to 4 events and one commit's events go in one INSERT (bound parameters are limited)
    feed_max_rows: Annotated[int, msgspec.Meta(gt=0, le=20_000)] = 1000
    feed_allow_private_hosts: bool = False
    shopify_api_version: Annotated[str, msgspec.Meta(pattern=r"^(20[0-9]{2}-(01|04|07|10)|unstable)$")] = "2025-04"
    shopify_base_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://[^/\s]+)?$")] = ""
    shopify_timeout_s: PositiveFloat = 10.0
    store_token_key: str = ""
    # push notifications (docs/push.md); the two secrets are never logged nor echoed in errors
    vapid_private_key: str = ""
    vapid_subject: Annotated[str, msgspec.Meta(pattern=r"^((mailto:[^@\s]+@[^@\s]+)|(https://[^\s/]+(/\S*)?))?$")] = ""
    expo_access_token: str = ""
    push_expo_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$")] = "https://exp.host/--/api/v2/push/send"
    push_allow_loopback: bool = False
    push_ttl_s: Annotated[int, msgspec.Meta(ge=0, le=28 * 86_400)] = 86_400
    push_timeout_s: PositiveFloat = 10.0
    push_retry_for_s: PositiveFloat = 3600.0
    push_poll_s: PositiveFloat = 1.0
    push_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 32

    def __repr__(self) -> str:
        shown = {name: getattr(self, name) for name in self.__struct_fields__ if name not in SECRET_SETTINGS}
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    def __post_init__(self) -> None:
        _check_database_url(self.database_url)
        _check_broker_url(self.broker_url)
        parse_keys(self.store_token_key)
        if self.log_level.lower() not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("log_level: must be one of critical, error, warning, info, debug")


def _check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path or ":memory:" in path:
            raise ValueError(f"database_url: {redact_url(url)!r} needs a file path, e.g. sqlite:///./dropsync.db")
    elif scheme not in {"postgresql", "postgres"}:
        raise ValueError(f"database_url: {redact_url(url)!r} must start with sqlite:/// or postgresql://")


def _check_broker_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in {"memory", "redis", "rediss"}:
        raise ValueError(f"broker_url: {redact_url(url)!r} must be memory:// or redis://host:port/db")


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read ``path`` (default ``litestar.toml`` beside the app, if it exists), then the environment.

    Precedence: keyword ``overrides`` > ``DROPSYNC_*`` environment variables > the file > defaults.
    """
    environ = os.environ if environ is None else environ
    if path is None and f"{ENV_PREFIX}CONFIG" in environ:
        path = Path(environ[f"{ENV_PREFIX}CONFIG"])
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file {str(path)!r}")
    config_path = path or DEFAULT_CONFIG_PATH
    _refuse_unknown_variables(environ)
    raw: dict[str, Any] = {}
    if config_path.exists():
        try:
            raw = msgspec.toml.decode(config_path.read_bytes())
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
        known = set(Settings.__struct_fields__)
        for key in raw:
            if key not in known:
                raise ConfigError(f"{config_path}: unknown setting {key!r}")
    sources = {key: str(config_path) for key in raw}
    for field in Settings.__struct_fields__:
        env_name = f"{ENV_PREFIX}{field.upper()}"
        if env_name in environ:
            value = environ[env_name]
            # A list setting comes from the environment as comma-separated values.
            is_list = field in _LIST_FIELDS
            raw[field] = [item.strip() for item in value.split(",") if item.strip()] if is_list else value
            sources[field] = env_name
    raw.update(overrides)
    sources.update(dict.fromkeys(overrides, "argument"))
    return _convert(raw, sources)


_LIST_FIELDS = frozenset({"cors_allow_origins", "public_origins"})
SECRET_SETTINGS = frozenset({"store_token_key", "vapid_private_key", "expo_access_token"})
"""Settings whose values are never shown: not in errors, not in ``repr``."""

# Variables with our prefix that are not settings: the config file itself, and the test suite's.
_NOT_SETTINGS = ("CONFIG", "TEST_")


def _refuse_unknown_variables(environ: Mapping[str, str]) -> None:
    known = {f"{ENV_PREFIX}{field.upper()}" for field in Settings.__struct_fields__}
    for name in environ:
        if name.startswith(ENV_PREFIX) and name not in known and not name[len(ENV_PREFIX) :].startswith(_NOT_SETTINGS):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{name}: unknown setting{hint}")


def _convert(raw: dict[str, Any], sources: dict[str, str]) -> Settings:
    # Check field by field first, so the error names the variable the bad value came from.
    for field in msgspec.structs.fields(Settings):
        if field.name not in raw:
            continue
        value = raw[field.name]
        try:
            msgspec.convert(value, field.type, strict=False)
        except msgspec.ValidationError as exc:
            shown = "(hidden)" if field.name in SECRET_SETTINGS else repr(value)
            raise ConfigError(f"{sources[field.name]}: bad value {shown} for {field.name}: {exc}") from None
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc).split(" - at ", 1)[0]
        field_name = message.split(":", 1)[0]
        raise ConfigError(f"{sources.get(field_name, 'settings')}: {message}") from None
