"""The server's VAPID key (RFC 8292): the identity push services check on every Web Push request.

The key comes from ``DROPSYNC_VAPID_PRIVATE_KEY`` when set (URL-safe base64 of the 32-byte P-256
private key, as ``npx web-push generate-vapid-keys`` prints it, or a PEM), else from the database:
generated on the first start and shared by every process (the first writer wins; the others read
its key). Browsers bind their subscriptions to the public key, so it must not change once users
have subscribed. The private key is never logged and never leaves the process but as signatures.

Signing is py_vapid's (ES256 JWT); no cryptography is written here.
"""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from domain.tables import ServerKey
from domain.values import now_ms

KEY_NAME = "vapid_private_key"
TOKEN_LIFETIME_S = 12 * 3600  # RFC 8292 allows at most 24 h; push services may reject more
TOKEN_REUSE_S = 3600  # a token is reused for an origin while it has at least this long to live


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from URL-safe base64 (32 bytes) or PEM; :class:`ValueError` otherwise.

    The message never contains the key.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise ValueError("wrong length")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError):
        raise ValueError("not a P-256 private key (URL-safe base64 of 32 bytes, or PEM)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 private key (URL-safe base64 of 32 bytes, or PEM)")
    return key


def private_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


class VapidKey:
    """Signs the ``Authorization: vapid t=…, k=…`` header of Web Push requests."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._vapid = Vapid02(private_key=private_key, conf={"no-strict": True})
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(point)
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"VapidKey(public_key={self.public_key!r})"

    def authorization(self, audience: str, subject: str) -> str:
        """The header value for a request to a push service at ``audience`` (its origin)."""
        now = time.time()
        cached = self._tokens.get((audience, subject))
        if cached is not None and cached[1] - now > TOKEN_REUSE_S:
            return cached[0]
        expires = int(now) + TOKEN_LIFETIME_S
        header: str = self._vapid.sign({"aud": audience, "exp": expires, "sub": subject})["Authorization"]
        if len(self._tokens) > 1000:  # one entry per push service origin: a handful in practice
            self._tokens.clear()
        self._tokens[(audience, subject)] = (header, expires)
        return header


async def load_vapid_key(configured: str) -> VapidKey:
    """The configured key, else the database's, generated and stored on first use."""
    if configured:
        return VapidKey(parse_private_key(configured))
    row = await ServerKey.select(ServerKey.value).where(ServerKey.name == KEY_NAME).first()
    if row is None:
        generated = private_key_text(ec.generate_private_key(ec.SECP256R1()))
        await ServerKey.insert(ServerKey(name=KEY_NAME, value=generated, created_at=now_ms())).on_conflict(
            action="DO NOTHING"
        )
        # Several processes may start together: every one uses the key that was stored first.
        row = await ServerKey.select(ServerKey.value).where(ServerKey.name == KEY_NAME).first()
        if row is None:
            raise RuntimeError("the VAPID key could not be stored in the database")
    return VapidKey(parse_private_key(row["value"]))
