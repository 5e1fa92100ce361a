"""What the audit record of a refused request says: why, never what was sent."""

import json

from switchboard.channel_gateway.rejections import _detail


def test_a_validation_error_keeps_the_field_and_message_not_the_input() -> None:
    body = {
        "detail": [
            {
                "type": "string_type",
                "loc": ["body", "text"],
                "msg": "Input should be a valid string",
                "input": {"x": 1},
            },
            {"type": "too_long", "loc": ["body", "id"], "msg": "too long", "input": "alice@example.com secret"},
        ]
    }
    detail = _detail(json.dumps(body).encode())
    assert detail == "body.text: Input should be a valid string; body.id: too long"
    assert _detail(b'{"detail": "missing or wrong token"}') == "missing or wrong token"
    assert _detail(b"plain words") == "plain words"
