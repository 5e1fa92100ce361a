"""A device's own status, as published (retained) on ``…/devices/<id>/status``."""

import json

import pytest

from switchboard.channel_gateway.mqtt import MAX_READINGS, parse_status
from switchboard.channel_gateway.rejections import Rejected


@pytest.mark.parametrize(
    ("payload", "readings", "online"),
    [
        (b'{"online": true, "power": "off"}', {"power": "off"}, True),
        (
            b'{"power": "ON", "brightness": 80, "contact": false}',
            {"power": "ON", "brightness": "80", "contact": "false"},
            None,
        ),
        (b'{"temperature": 21.5, "color": {"r": 1}, "tags": [1], "note": null}', {"temperature": "21.5"}, None),
        (b"offline", {}, False),  # a last will in plain text
        (b"Online\n", {}, True),
        (b'"offline"', {}, False),
    ],
)
def test_readings_and_reachability(payload: bytes, readings: dict[str, str], online: bool | None) -> None:
    assert parse_status(payload, 1024) == (readings, online)


def test_an_empty_payload_clears_a_retained_status_and_says_nothing() -> None:
    assert parse_status(b"", 1024) is None
    assert parse_status(b"  ", 1024) is None


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        (b"on fire", 400, "not JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'{"online": "yes"}', 422, "online"),
        (json.dumps({"k" * 65: "v"}).encode(), 422, "at most 64 characters"),
        (json.dumps({f"r{i}": i for i in range(MAX_READINGS + 1)}).encode(), 422, f"at most {MAX_READINGS}"),
        (b"x" * 2000, 413, "larger than 1024 bytes"),
    ],
)
def test_a_malformed_status_is_refused_with_the_reason(payload: bytes, status: int, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_status(payload, 1024)
    assert refused.value.status == status and reason in refused.value.detail
