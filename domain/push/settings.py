"""How push notifications are sent: the ``push_*``, ``vapid_*`` and ``expo_*`` settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How push notifications are sent (``litestar.toml``: the ``push_*`` and ``vapid_*`` settings)."""

    vapid_private_key: str = field(default="", repr=False)
    vapid_subject: str = ""
    expo_url: str = "https://exp.host/--/api/v2/push/send"
    expo_access_token: str = field(default="", repr=False)
    allow_loopback: bool = False
    ttl_s: int = 24 * 3600
    timeout_s: float = 10.0
    retry_for_s: float = 3600.0
    poll_s: float = 1.0
    concurrency: int = 32
