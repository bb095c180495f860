"""streams.redis_broker: the wire form of one commit's events between processes."""

from __future__ import annotations

from streams.broker import Event
from streams.redis_broker import decode_message, encode_message


def test_a_burst_round_trips_byte_for_byte() -> None:
    events = [
        Event(
            user_id=7, id=41, type="product_updated", payload=b'{"id":41,"data":{"name":"a b\\n"}}', committed_at=1.5
        ),
        Event(user_id=7, id=42, type="stock_low", payload=b'{"id":42}'),
    ]
    origin, decoded = decode_message(7, encode_message(b"abc.123", events))
    assert origin == b"abc.123"
    assert [(e.user_id, e.id, e.type, e.payload, e.committed_at) for e in decoded] == [
        (7, 41, "product_updated", events[0].payload, 1.5),
        (7, 42, "stock_low", b'{"id":42}', None),
    ]


def test_payloads_with_newlines_and_spaces_do_not_confuse_the_framing() -> None:
    payload = b'{"id":1,"data":{"message":"line one\\nline two","raw":"a\nb c"}}'
    _, decoded = decode_message(3, encode_message(b"o", [Event(user_id=3, id=1, type="x", payload=payload)]))
    assert decoded[0].payload == payload
