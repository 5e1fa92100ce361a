"""What the audit record of a refused request says: why, never what was sent."""

import json

from switchboard.channel_gateway.rejections import RejectionLog, _detail
from switchboard.events.v1 import messages_pb2 as m
from switchboard.events.v1.envelope_pb2 import Envelope


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


class _Queued:
    """Collects what the log queues (the producer's ``enqueue``, without Kafka)."""

    def __init__(self) -> None:
        self.events: list[m.AuditEvent] = []

    async def enqueue(self, topic: str, envelope: Envelope) -> None:
        self.events.append(envelope.audit_event)


def _log(now: list[float], max_counted: int = 10_000) -> tuple[RejectionLog, _Queued]:
    queued = _Queued()
    log = RejectionLog(
        queued, "audit", "gateway", "default", window_s=60, max_counted=max_counted, clock=lambda: now[0]
    )  # type: ignore[arg-type]
    return log, queued


async def test_a_flood_of_bad_tokens_is_a_few_events_whose_counts_add_up() -> None:
    now = [1_000_020.0]
    log, queued = _log(now)
    for _ in range(500):
        await log(401, "POST", "/v1/messages", "missing or wrong token", "203.0.113.7")
    for _ in range(3):
        await log(401, "POST", "/v1/messages", "missing or wrong token", "198.51.100.2")
    await log(422, "POST", "/v1/messages", "body.text: too long", "203.0.113.7")
    # The first refusal of each address at once, every refusal that is not a 401 too.
    assert [(e.action, e.labels["client"], e.labels["status"]) for e in queued.events] == [
        ("request.rejected", "203.0.113.7", "401"),
        ("request.rejected", "198.51.100.2", "401"),
        ("request.rejected", "203.0.113.7", "422"),
    ]
    await log.flush()  # the minute is not over: nothing more yet
    assert len(queued.events) == 3
    now[0] += 60
    await log.flush()
    summaries = {e.labels["client"]: e for e in queued.events if e.action == "request.rejected.summary"}
    assert {client: int(e.labels["count"]) for client, e in summaries.items()} == {
        "203.0.113.7": 499,
        "198.51.100.2": 2,
    }
    assert summaries["203.0.113.7"].reason.startswith("499 more like: missing or wrong token")
    # A new minute starts a new count.
    await log(401, "POST", "/v1/messages", "missing or wrong token", "203.0.113.7")
    assert queued.events[-1].action == "request.rejected"


async def test_very_many_addresses_share_one_count() -> None:
    now = [0.0]
    log, queued = _log(now, max_counted=10)
    for i in range(1000):
        await log(401, "GET", "/v1/conversations", "missing or wrong token", f"10.0.{i // 256}.{i % 256}")
    await log.flush(everything=True)
    counted = sum(int(e.labels.get("count", "1")) for e in queued.events)
    assert counted == 1000
    assert len(queued.events) <= 12  # 10 addresses, "(others)" once and its summary
