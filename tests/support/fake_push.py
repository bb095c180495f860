"""Fake push services on loopback that check requests the way the real ones do.

- :class:`FakeWebPushService` is a Web Push service (RFC 8030). It checks the VAPID
  ``Authorization: vapid t=…, k=…`` header (the ES256 signature against the key the server
  advertises, ``aud`` = this service's origin, ``exp`` at most 24 h ahead, ``sub`` present),
  ``Content-Encoding: aes128gcm``, ``TTL``, ``Urgency`` and ``Topic``, and **decrypts** the
  payload with the private key of the subscription (:class:`BrowserKeys`, made by the test, as a
  browser makes its own). It answers 201, or what the test asks: 410, 429 with ``Retry-After``,
  500, or it hangs.
- :class:`FakeExpo` is Expo's push API: it checks the request's shape and answers a ticket per
  message (``ok``, or ``DeviceNotRegistered`` for tokens the test marks as gone), or 429/500.

The decryption and the signature check here are written from RFC 8291 and RFC 8292 with
``cryptography``'s primitives, independently of the libraries the server uses, so a mistake on
either side shows. Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.support.fakes import HOLD_LIMIT_S, _serving

URGENCIES = {"very-low", "low", "normal", "high"}
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_EXPO_TOKEN = re.compile(r"^Expo(nent)?PushToken\[[A-Za-z0-9_-]+\]$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class DecryptError(ValueError):
    pass


@dataclass
class BrowserKeys:
    """What a browser makes when it subscribes: a P-256 key pair and a 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def keys_json(self) -> dict[str, str]:
        return {"p256dh": b64url(self.public_bytes), "auth": b64url(self.auth_secret)}

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 section 3 and RFC 8188: one aes128gcm record, keys from ECDH + HKDF."""
        if len(body) < 21:
            raise DecryptError("body shorter than the aes128gcm header")
        salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender_public = body[21 : 21 + id_length]
        ciphertext = body[21 + id_length :]
        if id_length != 65 or sender_public[0] != 4:
            raise DecryptError(f"keyid is not an uncompressed P-256 key ({id_length} bytes)")
        if len(ciphertext) > record_size or record_size < 18:
            raise DecryptError(f"more than one record (rs={record_size}, {len(ciphertext)} bytes)")
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
        shared = self.private_key.exchange(ec.ECDH(), peer)
        key_info = b"WebPush: info\x00" + self.public_bytes + sender_public
        ikm = _hkdf(self.auth_secret, shared, key_info, 32)
        cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        try:
            padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise DecryptError("the ciphertext does not authenticate with this subscription's keys") from None
        stripped = padded.rstrip(b"\x00")
        if not stripped.endswith(b"\x02"):
            raise DecryptError("the last record does not end with the 0x02 delimiter")
        return stripped[:-1]


def verify_vapid(header: str, advertised_key: str | None, audience: str, now: float) -> dict[str, Any]:
    """The claims of a valid ``vapid t=…, k=…`` header (RFC 8292); :class:`ValueError` saying what is wrong."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"scheme {scheme!r} is not vapid")
    params = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    token, key = params.get("t"), params.get("k")
    if not token or not key:
        raise ValueError("t= or k= missing")
    if advertised_key is not None and key != advertised_key:
        raise ValueError("k is not the server's advertised VAPID key")
    signing_input, _, signature_text = token.rpartition(".")
    header_text, _, claims_text = signing_input.partition(".")
    jwt_header = json.loads(b64url_decode(header_text))
    if jwt_header.get("alg") != "ES256":
        raise ValueError(f"alg is {jwt_header.get('alg')!r}, not ES256")
    signature = b64url_decode(signature_text)
    if len(signature) != 64:
        raise ValueError("the signature is not 64 bytes (r || s)")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    try:
        public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad ES256 signature") from None
    claims: dict[str, Any] = json.loads(b64url_decode(claims_text))
    if claims.get("aud") != audience:
        raise ValueError(f"aud {claims.get('aud')!r} is not {audience!r}")
    expires = claims.get("exp")
    if not isinstance(expires, int) or expires <= now or expires > now + 24 * 3600:
        raise ValueError(f"exp {expires!r} is not within the next 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise ValueError(f"sub {claims.get('sub')!r} is not a mailto: or https: URI")
    return claims


@dataclass
class ReceivedPush:
    """One request the fake Web Push service took (``status`` is what it answered)."""

    subscription: str
    status: int
    headers: dict[str, str]
    claims: dict[str, Any]
    plaintext: bytes
    at: float

    @property
    def message(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.plaintext)
        return decoded


class FakeWebPushService:
    """See the module docstring. ``mode`` applies to every subscription unless ``modes`` names it:
    ``"201"``, ``"410"``, ``"429"`` (with ``Retry-After: retry_after``), ``"500"``, ``"hang"``."""

    def __init__(self) -> None:
        self.url = ""
        self.vapid_key: str | None = None  # set by the test from GET /push/vapid-public-key
        self.keys: dict[str, BrowserKeys] = {}
        self.mode = "201"
        self.modes: dict[str, str] = {}
        self.retry_after = "1"
        self.received: list[ReceivedPush] = []
        self.rejected: list[str] = []
        self.hanging = 0
        self.hung_answer = "201"  # what a held request gets once released; "drop": closed, not counted
        self._changed = threading.Condition()
        self._release = threading.Event()

    @contextmanager
    def running(self) -> Iterator[FakeWebPushService]:
        with _serving(_WebPushHandler, self) as url:
            self.url = url
            try:
                yield self
            finally:
                self._release.set()

    def subscribe(self) -> tuple[str, BrowserKeys]:
        """A new subscription at this service: its endpoint and the browser's keys."""
        name = secrets.token_urlsafe(12)
        self.keys[name] = BrowserKeys()
        return f"{self.url}/push/{name}", self.keys[name]

    def subscription_json(self) -> tuple[str, dict[str, Any]]:
        """A subscription's name and its ``PushSubscription.toJSON()``."""
        endpoint, keys = self.subscribe()
        return endpoint.rsplit("/", 1)[1], {"endpoint": endpoint, "expirationTime": None, "keys": keys.keys_json()}

    def delivered(self, subscription: str | None = None) -> list[ReceivedPush]:
        """The pushes answered 201, to ``subscription`` (or any)."""
        with self._changed:
            return [
                push
                for push in self.received
                if push.status == 201 and (subscription is None or push.subscription == subscription)
            ]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def hold(self) -> None:
        """From now on, requests in ``"hang"`` mode wait for :meth:`release_hanging`."""
        self._release.clear()

    def release_hanging(self) -> None:
        self._release.set()

    def _note(self, push: ReceivedPush | None = None, rejection: str | None = None) -> None:
        with self._changed:
            if push is not None:
                self.received.append(push)
            if rejection is not None:
                self.rejected.append(rejection)
            self._changed.notify_all()


class _WebPushHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        service: FakeWebPushService = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        name = self.path.rsplit("/", 1)[-1]
        headers = {key.lower(): value for key, value in self.headers.items()}
        mode = service.modes.get(name, service.mode)
        if mode == "hang":
            with service._changed:
                service.hanging += 1
                service._changed.notify_all()
            service._release.wait(HOLD_LIMIT_S)
            if service.hung_answer == "drop":
                self.close_connection = True
                return
            mode = service.hung_answer
        keys = service.keys.get(name)
        if keys is None:
            self._answer(404, "no such subscription")
            return
        try:
            claims, plaintext = self._check(service, keys, headers, body)
        except (ValueError, KeyError) as exc:
            service._note(rejection=f"{name}: {exc}")
            self._answer(400, str(exc))
            return
        status = {"201": 201, "410": 410, "429": 429, "500": 500}[mode]
        service._note(ReceivedPush(name, status, headers, claims, plaintext, time.monotonic()))
        extra = {"Retry-After": service.retry_after} if status == 429 else {}
        self._answer(status, "", extra)

    def _check(
        self, service: FakeWebPushService, keys: BrowserKeys, headers: dict[str, str], body: bytes
    ) -> tuple[dict[str, Any], bytes]:
        claims = verify_vapid(headers.get("authorization", ""), service.vapid_key, service.url, time.time())
        if headers.get("content-encoding") != "aes128gcm":
            raise ValueError(f"Content-Encoding is {headers.get('content-encoding')!r}, not aes128gcm")
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            raise ValueError(f"TTL {ttl!r} is not a number of seconds")
        if headers.get("urgency", "normal") not in URGENCIES:
            raise ValueError(f"Urgency {headers.get('urgency')!r} is not one of {sorted(URGENCIES)}")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise ValueError(f"Topic {topic!r} is not 1-32 URL-safe base64 characters")
        if len(body) > 4096:
            raise ValueError(f"payload of {len(body)} bytes is over 4096")
        return claims, keys.decrypt(body)

    def _answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        data = text.encode()
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            return  # the sender gave up (a timeout) or was killed


# --- Expo ----------------------------------------------------------------------------------------

EXPO_PATH = "/--/api/v2/push/send"


class FakeExpo:
    """Expo's push API: ``gone`` tokens get ``DeviceNotRegistered``; ``status`` 429/500 fails the
    whole request (with ``Retry-After`` on 429)."""

    def __init__(self, access_token: str | None = None) -> None:
        self.url = ""
        self.access_token = access_token
        self.gone: set[str] = set()
        self.status = 200
        self.requests: list[list[dict[str, Any]]] = []
        self.rejected: list[str] = []
        self._changed = threading.Condition()

    @property
    def send_url(self) -> str:
        return self.url + EXPO_PATH

    @contextmanager
    def running(self) -> Iterator[FakeExpo]:
        with _serving(_ExpoHandler, self) as url:
            self.url = url
            yield self

    def messages(self) -> list[dict[str, Any]]:
        with self._changed:
            return [message for batch in self.requests for message in batch]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True


class _ExpoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        expo: FakeExpo = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        problem = self._problem(expo, body)
        if problem is not None:
            with expo._changed:
                expo.rejected.append(problem)
                expo._changed.notify_all()
            self._answer(400, {"errors": [{"code": "VALIDATION_ERROR", "message": problem}]})
            return
        messages: list[dict[str, Any]] = json.loads(body)
        with expo._changed:
            expo.requests.append(messages)
            expo._changed.notify_all()
        if expo.status != 200:
            self._answer(expo.status, {"errors": [{"code": "TOO_MANY_REQUESTS", "message": "slow down"}]})
            return
        tickets = [
            {
                "status": "error",
                "message": f'"{message["to"]}" is not a registered push notification recipient',
                "details": {"error": "DeviceNotRegistered"},
            }
            if message["to"] in expo.gone
            else {"status": "ok", "id": secrets.token_hex(8)}
            for message in messages
        ]
        self._answer(200, {"data": tickets})

    def _problem(self, expo: FakeExpo, body: bytes) -> str | None:
        problems = []
        if self.path != EXPO_PATH:
            problems.append(f"path {self.path}")
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            problems.append("Content-Type is not application/json")
        if expo.access_token is not None and self.headers.get("Authorization") != f"Bearer {expo.access_token}":
            problems.append("missing or wrong access token")
        try:
            messages = json.loads(body)
        except ValueError:
            messages = None
        if not isinstance(messages, list) or not 1 <= len(messages) <= 100:
            problems.append("not an array of 1 to 100 messages")
        else:
            problems.extend(filter(None, map(_message_problem, messages)))
        return problems[0] if problems else None

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            return


def _message_problem(message: Any) -> str | None:
    """What is wrong with one Expo message, as Expo's API would refuse it."""
    checks = [
        (isinstance(message, dict) and bool(_EXPO_TOKEN.fullmatch(str(message.get("to", "")))), "bad 'to'"),
        (isinstance(message, dict) and isinstance(message.get("title"), str), "title must be a string"),
        (isinstance(message, dict) and isinstance(message.get("data", {}), dict), "data must be an object"),
        (isinstance(message, dict) and message.get("priority", "default") in {"default", "normal", "high"}, "priority"),
        (isinstance(message, dict) and isinstance(message.get("ttl", 0), int), "ttl must be an integer"),
    ]
    return next((problem for ok, problem in checks if not ok), None)
