"""device.control intents: which device, what command, what the user hears."""

from datetime import UTC, datetime, timedelta

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import devices
from switchboard.scheduler.jobs import Job
from switchboard.scheduler.reminders import Refusal

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
REGISTRY = devices.Registry.load()  # the packaged demo set


def _intent(text: str, language: str = "en", **slots: str) -> m.ParsedIntent:
    message = m.InboundMessage(message_id="msg-1", channel=m.CHANNEL_MQTT, channel_chat_id="panel-1", text=text)
    message.sender.user_id = "mqtt:panel-1"
    return m.ParsedIntent(
        message=message,
        intent="device.control",
        slots=[m.Slot(name=k, value=v) for k, v in slots.items()],
        language=language,
        person_id="person-1",
    )


def test_the_room_and_kind_pick_the_device_and_the_command_carries_the_slots() -> None:
    job = devices.plan(
        _intent("dim the bedroom light to 30%", device="light", room="bedroom", action="set", value="30%"),
        REGISTRY,
        "conv",
        "t",
        NOW,
        attempts=3,
    )
    assert isinstance(job, Job)
    assert (job.kind, job.title, job.max_attempts, job.owner) == ("device", "bedroom light", 3, "person-1")
    command = devices.command(job, NOW, timedelta(seconds=10))
    assert (command.command_id, command.device_id, command.action, command.value) == (
        job.id,
        "bedroom-light",
        "set",
        "30%",
    )
    assert command.expires_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=10)
    assert command.in_reply_to == "msg-1"
    done = m.DeviceCommandResult(command_id=job.id, ok=True)
    assert devices.outcome_text(job, done) == "Done: bedroom light, set 30%."
    refused = m.DeviceCommandResult(command_id=job.id, ok=False, error="brightness out of range")
    assert devices.outcome_text(job, refused) == "The bedroom light could not do that: brightness out of range."


def test_unknown_ambiguous_and_unclear_requests_are_answered() -> None:
    unknown = devices.plan(_intent("x", device="fan", room="kitchen", action="on"), REGISTRY, "c", "t", NOW, 3)
    assert isinstance(unknown, Refusal) and unknown.text == "I don't know a fan in the kitchen."
    which = devices.plan(_intent("lights off", device="light", action="off"), REGISTRY, "c", "t", NOW, 3)
    assert isinstance(which, Refusal) and which.text == "Which one: living room light, bedroom light?"
    unclear = devices.plan(_intent("do the thing"), REGISTRY, "c", "t", NOW, 3)
    assert isinstance(unclear, Refusal) and unclear.text == "Which device, and what should it do?"
    zh = devices.plan(
        _intent("关掉卧室风扇", "zh", device="fan", room="bedroom", action="off"), REGISTRY, "c", "t", NOW, 3
    )
    assert isinstance(zh, Job) and zh.title == "卧室风扇"
    assert devices.failure_text(zh) == "卧室风扇没有响应（已尝试 3 次），请检查它是否开机并已联网。"
