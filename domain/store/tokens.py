"""The store access token at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key
from the settings (``store_token_key``), never stored, logged or returned in clear.

- ``store_token_key`` holds one or more Fernet keys, comma-separated: the first encrypts, any of
  them decrypts (rotation: put the new key first, re-save or restart, drop the old one later).
- Without a key, connecting a store is refused (403, saying which setting is missing) and a
  token already saved cannot be used (the store counts as unavailable): nothing falls back to
  keeping the secret in clear.
- A token saved in clear before encryption existed is still read, and :meth:`TokenBox.seal`
  encrypts such rows (run at start-up when a key is set).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from domain.errors import Forbidden
from domain.store.base import StoreUnavailable

PREFIX = "fernet:"
NO_KEY = (
    "connecting a store needs the server setting store_token_key (DROPSYNC_STORE_TOKEN_KEY); "
    "ask the operator to set one"
)


def parse_keys(setting: str) -> list[bytes]:
    """The Fernet keys of a ``store_token_key`` setting; :class:`ValueError` (naming no key) if one is bad."""
    keys = [key.strip().encode() for key in setting.split(",") if key.strip()]
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                "store_token_key: not a Fernet key (32 url-safe base64 bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            ) from None
    return keys


class TokenBox:
    def __init__(self, setting: str = "") -> None:
        keys = parse_keys(setting)
        self.fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    def encrypt(self, token: str) -> str:
        if self.fernet is None:
            raise Forbidden(NO_KEY)
        return PREFIX + self.fernet.encrypt(token.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The token of a stored value (one saved in clear before encryption is returned as is)."""
        if not stored.startswith(PREFIX):
            return stored
        if self.fernet is None:
            raise StoreUnavailable("the store token cannot be read: the server has no store_token_key")
        try:
            return self.fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise StoreUnavailable(
                "the store token cannot be read with the server's store_token_key: save it again"
            ) from None

    def is_sealed(self, stored: str) -> bool:
        return stored.startswith(PREFIX)
