"""The envelope built around pre-encoded data is byte for byte the one encode_envelope makes."""

from __future__ import annotations

from typing import Any

import pytest

from domain.events import encode_data, encode_envelope, envelope_from_data


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"id": 7, "sku": "A-1", "price": "12.50", "changed": ["price", "stock"], "synced_at": None},
        {"text": 'quotes " and \\ backslashes, é, 😀, \x00 and </script>', "nested": {"a": [1, 2.5, True]}},
    ],
)
def test_envelope_from_data_is_encode_envelope(data: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"event_id": 2**53 + 1, "event_type": "product_updated", "timestamp": 1_765_000_000_123}
    expected = encode_envelope(data=data, user_id=42, **fields)
    assert envelope_from_data(data=encode_data(data), user_id=42, **fields) == expected
