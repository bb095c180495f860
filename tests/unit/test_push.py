"""The pure pieces of push: messages, collapse keys, payload bounds, encryption and VAPID
signatures checked by the fake service's independent RFC 8291/8292 code, Retry-After, back-off."""

from __future__ import annotations

import email.utils
import json
import re
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from domain.push.keys import VapidKey, parse_private_key, private_key_text
from domain.push.messages import MAX_PAYLOAD_BYTES, decode_push_types, encode_push_types, notification_for
from domain.push.outcome import backoff_s, for_status, parse_retry_after
from domain.push.webpush import encrypt
from tests.support.fake_push import BrowserKeys, DecryptError, b64url_decode, verify_vapid

ORDER = {
    "id": 12,
    "external_id": "1004",
    "total": "42.96",
    "currency": "USD",
    "customer": {"name": "Katherine Johnson"},
}


def test_the_fake_service_decrypts_the_rfc_8291_example() -> None:
    """RFC 8291 appendix A: the fake's decryption is checked against the standard's own vector."""
    keys = BrowserKeys(
        private_key=parse_private_key("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"),
        auth_secret=b64url_decode("BTBZMqHH6r4Tts7J_aSIgg"),
    )
    message = b64url_decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wE"
        "qKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    )
    assert keys.decrypt(message) == b"When I grow up, I want to be a watermelon"


def test_the_server_encrypts_what_the_subscription_alone_can_read() -> None:
    keys, stranger = BrowserKeys(), BrowserKeys()
    body = encrypt(b'{"title": "hello"}', keys.keys_json()["p256dh"], keys.keys_json()["auth"])
    assert keys.decrypt(body) == b'{"title": "hello"}'
    assert body[21:86] != keys.public_bytes  # the sender's key is a fresh ephemeral one
    with pytest.raises(DecryptError):
        stranger.decrypt(body)


def test_vapid_headers_verify_against_the_advertised_key() -> None:
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    header = key.authorization("https://push.example.net", "mailto:ops@example.com")
    claims = verify_vapid(header, key.public_key, "https://push.example.net", time.time())
    assert claims["sub"] == "mailto:ops@example.com"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    other = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="advertised"):
        verify_vapid(header, other.public_key, "https://push.example.net", time.time())
    with pytest.raises(ValueError, match="aud"):
        verify_vapid(header, key.public_key, "https://elsewhere.example.net", time.time())


def test_private_keys_round_trip_and_bad_ones_are_refused_without_showing_them() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    text = private_key_text(key)
    assert parse_private_key(text).private_numbers() == key.private_numbers()
    for bad in ("", "not-a-key", text[:-4], "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"):
        with pytest.raises(ValueError, match="not a P-256 private key") as raised:
            parse_private_key(bad)
        assert not bad or bad not in str(raised.value)


def test_messages_people_can_read() -> None:
    order = notification_for("order_created", 7, ORDER)
    assert order is not None
    assert (order.title, order.body) == ("New order #1004", "42.96 USD · Katherine Johnson")
    assert (order.url, order.urgency, order.event_id) == ("/#order-12", "high", 7)
    low = notification_for("stock_low", 8, {"product_id": 3, "sku": "ACME-LAMP", "stock": 4, "threshold": 5})
    out = notification_for("stock_out", 9, {"product_id": 3, "sku": "ACME-LAMP", "stock": 0, "threshold": 5})
    assert low is not None
    assert out is not None
    assert low.title == "Low stock: ACME-LAMP (4 left)"
    assert out.title == "Out of stock: ACME-LAMP"
    assert low.urgency == out.urgency == "normal"
    assert low.topic == out.topic != order.topic  # the alerts of one SKU collapse
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", low.topic)  # RFC 8030's Topic alphabet and length
    system = notification_for("system_notification", 10, {"level": "info", "title": "Hi", "message": "there"})
    assert system is not None
    assert (system.title, system.body) == ("Hi", "there")
    assert notification_for("product_updated", 11, {"id": 1}) is None
    assert json.loads(order.payload())["type"] == "order_created"


def test_long_texts_are_cut_so_that_the_payload_stays_small() -> None:
    huge = {"level": "info", "title": "T" * 5000, "message": "\u2603" * 5000}
    notification = notification_for("system_notification", 1, huge)
    assert notification is not None
    assert len(notification.payload()) <= MAX_PAYLOAD_BYTES
    assert notification.title.endswith("…")
    controls = {"level": "info", "title": "x", "message": "\x01" * 1200}  # 6 bytes each once escaped
    cut = notification_for("system_notification", 1, controls)
    assert cut is not None
    assert len(cut.payload()) <= MAX_PAYLOAD_BYTES


def test_push_types_are_stored_once_each_in_a_fixed_order() -> None:
    assert encode_push_types(["stock_out", "order_created", "stock_out"]) == "order_created,stock_out"
    assert decode_push_types("order_created,stock_out") == ["order_created", "stock_out"]
    assert decode_push_types("") == []
    with pytest.raises(ValueError, match="product_added"):
        encode_push_types(["product_added"])


def test_push_service_answers_map_to_outcomes() -> None:
    assert for_status(201, None).status == "sent"
    assert for_status(410, None).status == for_status(404, None).status == "gone"
    assert for_status(429, "7") == for_status(429, "7")
    assert for_status(429, "7").retry_after_s == 7
    assert for_status(503, None).status == "retry"
    assert for_status(413, None).status == for_status(401, None).status == "failed"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = time.time()
    assert parse_retry_after("120") == 120
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("99999999") == 24 * 3600


def test_backoff_grows_and_never_undercuts_retry_after() -> None:
    assert 0.8 <= backoff_s(1, None) <= 1.2
    assert 6.4 <= backoff_s(4, None) <= 9.6
    assert backoff_s(30, None) <= 300 * 1.2
    assert backoff_s(1, 42.0) == 42.0


def test_push_secrets_stay_out_of_settings_repr_and_errors() -> None:
    from app.config import load_settings  # noqa: PLC0415 - only this test needs the app's config

    secrets = {"DROPSYNC_VAPID_PRIVATE_KEY": "vapid-secret-value", "DROPSYNC_EXPO_ACCESS_TOKEN": "expo-secret-value"}
    shown = repr(load_settings(environ=secrets))
    assert "vapid-secret-value" not in shown
    assert "expo-secret-value" not in shown
    assert "push_ttl_s" in shown
