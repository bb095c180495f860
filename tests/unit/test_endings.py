"""streams.endings: one row per way a stream ends, the same on both transports."""

from __future__ import annotations

import pytest

from streams.endings import SSE_ERROR_EVENT, WS_REASON_MAX_BYTES, Ending, close_reason


@pytest.mark.parametrize("ending", list(Ending))
def test_every_ending_has_a_close_code_a_reason_and_a_message(ending: Ending) -> None:
    assert 1000 <= ending.ws_close_code < 5000
    assert ending.ws_close_reason
    assert len(ending.ws_close_reason.encode()) <= WS_REASON_MAX_BYTES
    assert ending.message


def test_the_codes_clients_act_on() -> None:
    assert [(e.value, e.ws_close_code, e.resumable) for e in Ending] == [
        ("server_restart", 1012, True),
        ("slow_consumer", 1013, True),
        ("reconnect", 1013, True),
        ("unauthorized", 4401, False),
        ("bad_request", 4400, False),
        ("closed", 1000, True),
    ]


def test_the_sse_name_of_an_error_is_not_eventsources_own_error_event() -> None:
    assert SSE_ERROR_EVENT == "stream_error"


def test_a_close_reason_is_cut_to_what_a_close_frame_holds_on_a_character_boundary() -> None:
    assert close_reason("short") == "short"
    long = "é" * 100  # 200 bytes
    cut = close_reason(long)
    assert len(cut.encode()) <= WS_REASON_MAX_BYTES
    assert cut.endswith("...")
    assert cut.startswith("é")
