"""A device's answer to a DeviceCommand, as published on ``…/control/result``."""

import json

import pytest

from switchboard.channel_gateway.mqtt import parse_command, parse_result
from switchboard.channel_gateway.rejections import Rejected


def test_a_well_formed_result() -> None:
    result = parse_result(
        json.dumps({"command_id": "c-1", "ok": False, "error": "jammed", "state": {"power": "on"}}).encode(), 1024
    )
    assert (result.command_id, result.ok, result.error, result.state) == ("c-1", False, "jammed", {"power": "on"})
    assert parse_result(b'{"command_id": "c-2", "ok": true}', 1024).state == {}


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        (b"not json", 422, "Invalid JSON"),
        (b'{"ok": true}', 422, "command_id"),
        (b'{"command_id": "c", "ok": "maybe"}', 422, "ok"),
        (b'{"command_id": "c", "ok": true, "extra": 1}', 422, "extra"),
        (b'{"command_id": "has space", "ok": true}', 422, "command_id"),
        (json.dumps({"command_id": "c", "ok": True, "state": {"n": 1}}).encode(), 422, "state.n"),
        (b"x" * 2000, 413, "larger than 1024 bytes"),
    ],
)
def test_a_malformed_result_is_refused_with_the_reason(payload: bytes, status: int, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_result(payload, 1024)
    assert refused.value.status == status and reason in refused.value.detail


def test_a_command_with_a_control_character_is_refused_with_the_reason() -> None:
    with pytest.raises(Rejected) as refused:
        parse_command(json.dumps({"text": "lights\u0000off"}).encode(), max_bytes=65536, max_chars=8000)
    assert refused.value.status == 422 and "U+0000" in refused.value.detail
    assert parse_command(json.dumps({"text": "lights\noff"}).encode(), max_bytes=65536, max_chars=8000).text
