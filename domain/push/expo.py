"""Expo push (what a React Native app made with Expo uses): up to 100 messages per HTTPS request.

Expo answers with one ticket per message, in order: ``{"status": "ok", "id"}`` or
``{"status": "error", "message", "details": {"error": "DeviceNotRegistered" | ...}}``.
``DeviceNotRegistered`` means the app was uninstalled or its token is stale: the subscription is
deleted. ``MessageRateExceeded``, HTTP 429 and 5xx are retried with back-off (honouring
``Retry-After``); other errors are counted and dropped.

Stock alerts carry ``collapseId`` (iOS replaces the shown notification, Android collapses in
transit) and ``tag`` (Android replaces the shown notification).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import msgspec

from domain.push.messages import Notification
from domain.push.outcome import Outcome, parse_retry_after

logger = logging.getLogger("dropsync.push.expo")

BATCH_SIZE = 100
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_URL = "https://exp.host/--/api/v2/push/send"


@dataclass(frozen=True, slots=True)
class ExpoMessage:
    token: str
    notification: Notification
    ttl_s: int

    def __repr__(self) -> str:  # the token addresses the device: not for logs
        return f"ExpoMessage(type={self.notification.type!r}, event_id={self.notification.event_id})"

    def as_json(self) -> dict[str, Any]:
        notification = self.notification
        return {
            "to": self.token,
            "title": notification.title,
            "body": notification.body,
            "data": {
                "url": notification.url,
                "type": notification.type,
                "event_id": notification.event_id,
                "tag": notification.tag,
            },
            "ttl": max(self.ttl_s, 0),
            "priority": "high" if notification.urgency == "high" else "normal",
            "collapseId": notification.topic,
            "tag": notification.topic,
            "sound": "default",
        }


class ExpoSender:
    def __init__(self, client: httpx.AsyncClient, *, url: str, access_token: str, timeout_s: float) -> None:
        self.client = client
        self.url = url
        self._access_token = access_token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ExpoSender(url={self.url!r})"

    async def send(self, messages: list[ExpoMessage]) -> list[Outcome]:
        """One outcome per message, in order; at most :data:`BATCH_SIZE` messages. Never raises for
        Expo's or the network's faults."""
        if len(messages) > BATCH_SIZE:
            raise ValueError(f"at most {BATCH_SIZE} messages per Expo request")
        if not messages:
            return []
        try:
            with anyio.fail_after(self.timeout_s):
                return await self._send(messages)
        except TimeoutError:
            return [Outcome("retry", f"Expo did not answer within {self.timeout_s:g}s")] * len(messages)
        except httpx.HTTPError as exc:
            return [Outcome("retry", f"Expo unreachable ({type(exc).__name__})")] * len(messages)

    async def _send(self, messages: list[ExpoMessage]) -> list[Outcome]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._access_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        body = msgspec.json.encode([message.as_json() for message in messages])
        async with self.client.stream("POST", self.url, content=body, headers=headers) as response:
            data = await _read_capped(response)
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return [Outcome("retry", f"HTTP {status} from Expo", retry_after)] * len(messages)
        if status != 200:
            detail = f"HTTP {status} from Expo: {_request_error(data)}"
            logger.warning("Expo refused a batch of %d: %s", len(messages), detail)
            return [Outcome("failed", detail)] * len(messages)
        tickets = _tickets(data)
        if tickets is None or len(tickets) != len(messages):
            return [Outcome("retry", "Expo answered without a ticket per message")] * len(messages)
        return [_ticket_outcome(ticket) for ticket in tickets]


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None


def _request_error(data: bytes) -> str:
    document = _decode(data)
    if isinstance(document, dict) and isinstance(document.get("errors"), list) and document["errors"]:
        first = document["errors"][0]
        if isinstance(first, dict):
            return f"{first.get('code', 'error')}: {str(first.get('message', ''))[:200]}"
    return "no error message"


def _tickets(data: bytes) -> list[Any] | None:
    document = _decode(data)
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return list(document["data"])
    return None


def _ticket_outcome(ticket: Any) -> Outcome:
    if not isinstance(ticket, dict):
        return Outcome("retry", "Expo answered with an unreadable ticket")
    if ticket.get("status") == "ok":
        return Outcome("sent", "Expo ticket ok")
    details = ticket.get("details")
    error = details.get("error") if isinstance(details, dict) else None
    # Expo's messages quote the device's token: only its error code is kept (and logged).
    message = str(ticket.get("message", ""))[:200]
    if "PushToken[" in message:
        message = "(message withheld: it names the device's token)"
    if error == "DeviceNotRegistered":
        return Outcome("gone", "Expo: DeviceNotRegistered")
    if error == "MessageRateExceeded":
        return Outcome("retry", "Expo: MessageRateExceeded")
    return Outcome("failed", f"Expo: {error or 'error'}: {message}")
