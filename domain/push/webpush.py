"""Web Push (RFC 8030) with VAPID (RFC 8292) and an aes128gcm-encrypted payload (RFC 8291).

One request per notification, to the subscription's endpoint, with ``TTL``, ``Urgency`` and
``Topic`` (the collapse key: the push service keeps only the newest undelivered message of a
topic). The payload is encrypted by ``http_ece`` with a fresh ephemeral key for the
subscription's ``p256dh`` and ``auth``; the request is signed by :class:`~domain.push.keys.VapidKey`.

The connection goes to an address that passed the SSRF guard just before (see
:mod:`domain.push.endpoints`); the whole request is bounded by ``timeout_s``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from domain.push.endpoints import EndpointRefused, resolve
from domain.push.keys import VapidKey, b64url_decode
from domain.push.messages import Notification
from domain.push.outcome import Outcome, for_status

logger = logging.getLogger("dropsync.push.webpush")

MAX_BODY_BYTES = 4096  # what every push service accepts (RFC 8030 section 7.2)


@dataclass(frozen=True, slots=True)
class WebPushTarget:
    endpoint: str
    p256dh: str
    auth: str

    def __repr__(self) -> str:  # the keys and the endpoint's path are the subscription's secrets
        return f"WebPushTarget(origin={self.endpoint.split('/', 3)[:3]!r})"


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """The aes128gcm body (RFC 8291): salt, record size, the ephemeral public key, the ciphertext."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        private_key=ephemeral,
        dh=b64url_decode(p256dh),
        auth_secret=b64url_decode(auth),
        version="aes128gcm",
    )
    return body


class WebPushSender:
    def __init__(
        self,
        key: VapidKey,
        subject: str,
        client: httpx.AsyncClient,
        *,
        timeout_s: float,
        allow_loopback: bool,
    ) -> None:
        self.key = key
        self.subject = subject
        self.client = client
        self.timeout_s = timeout_s
        self.allow_loopback = allow_loopback

    async def send(self, target: WebPushTarget, notification: Notification, ttl_s: int) -> Outcome:
        """Send one notification; never raises for the service's or the network's faults."""
        try:
            with anyio.fail_after(self.timeout_s):
                return await self._send(target, notification, ttl_s)
        except TimeoutError:
            return Outcome("retry", f"no answer within {self.timeout_s:g}s")
        except EndpointRefused as exc:
            return Outcome("failed", f"endpoint refused: {exc}")
        except httpx.HTTPError as exc:
            return Outcome("retry", f"unreachable ({type(exc).__name__})")

    async def _send(self, target: WebPushTarget, notification: Notification, ttl_s: int) -> Outcome:
        checked = await resolve(target.endpoint, allow_loopback=self.allow_loopback)
        body = encrypt(notification.payload(), target.p256dh, target.auth)
        if len(body) > MAX_BODY_BYTES:
            return Outcome("failed", f"payload of {len(body)} bytes is over {MAX_BODY_BYTES}")
        headers = {
            "Host": checked.host_header,
            "Authorization": self.key.authorization(checked.origin, self.subject),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(max(ttl_s, 0)),
            "Urgency": notification.urgency,
            "Topic": notification.topic,
        }
        response: httpx.Response | None = None
        for index, url in enumerate(checked.urls):
            request = self.client.build_request(
                "POST", url, content=body, headers=headers, extensions={"sni_hostname": checked.sni_hostname}
            )
            try:
                # Streamed and closed unread: only the status and headers matter.
                response = await self.client.send(request, stream=True)
                await response.aclose()
                break
            except httpx.ConnectError:
                if index == len(checked.urls) - 1:
                    raise
        assert response is not None
        outcome = for_status(response.status_code, response.headers.get("retry-after"))
        if outcome.status != "sent":
            logger.info("web push to %s: %s", checked.origin, outcome.detail)
        return outcome
