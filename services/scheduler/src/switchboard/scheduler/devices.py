"""Device actions: "turn off the bedroom light" becomes a DeviceCommand job that is done when
the device answers (its DeviceCommandResult), and retried, then failed, when it does not.

The registry (``devices.yaml``) says which devices exist; the parser's ``device`` (kind) and
``room`` slots pick one. The job's id is the command id: a device that gets the same
command twice (a retry after a lost answer) can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import yaml
from google.protobuf.timestamp_pb2 import Timestamp

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.jobs import URGENT, Job
from switchboard.scheduler.reminders import Refusal, language_of, say, slots_of  # texts: replies.yaml

KIND = "device"
INTENT = "device.control"


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: str
    room: str
    names: dict[str, str]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.id


class Registry:
    """The devices that may be commanded, from a YAML file."""

    def __init__(self, devices: Sequence[Device]) -> None:
        self.devices = list(devices)

    @classmethod
    def load(cls, path: Path | None = None) -> Registry:
        text = path.read_text() if path else resources.files(__package__).joinpath("devices.yaml").read_text()
        entries = (yaml.safe_load(text) or {}).get("devices") or []
        return cls(
            [
                Device(id=str(e["id"]), kind=str(e["kind"]), room=str(e.get("room", "")), names=dict(e.get("name", {})))
                for e in entries
            ]
        )

    def find(self, kind: str, room: str) -> list[Device]:
        """The devices of ``kind`` in ``room`` (in any room when none was said)."""
        return [d for d in self.devices if d.kind == kind and (not room or d.room == room)]


def plan(
    intent: m.ParsedIntent, registry: Registry, conversation_key: str, tenant_id: str, now: datetime, attempts: int
) -> Job | Refusal:
    """The command job ``device.control`` asks for, or what to tell the user instead."""
    language = language_of(intent)
    slots = slots_of(intent)
    kind, room = slots.get("device", ""), slots.get("room", "")
    found = registry.find(kind, room)
    if not kind or not slots.get("action"):
        return Refusal(say("device_unclear", language))
    if not found:
        where = room.replace("_", " ")
        return Refusal(say("device_unknown", language, device=kind, room=where))
    if len(found) > 1:
        names = ", ".join(d.name(language) for d in found)
        return Refusal(say("device_which", language, devices=names))
    device = found[0]
    return Job.for_intent(
        intent,
        conversation_key=conversation_key,
        tenant_id=tenant_id,
        kind=KIND,
        title=device.name(language),
        time_zone=intent.time_zone or "UTC",
        occurrence=now,
        language=language,
        priority=URGENT,  # someone is waiting in front of the device
        max_attempts=attempts,
        payload={
            "device_id": device.id,
            "action": slots["action"],
            "value": slots.get("value", ""),
            "room": device.room,
        },
    )


def command(job: Job, now: datetime, answer_within: timedelta) -> m.DeviceCommand:
    """The DeviceCommand of ``job`` (the same command id on every attempt)."""
    expires = Timestamp()
    expires.FromDatetime(now + answer_within)
    return m.DeviceCommand(
        command_id=job.id,
        device_id=job.payload["device_id"],
        action=job.payload["action"],
        room=job.payload.get("room", ""),
        value=job.payload.get("value", ""),
        expires_at=expires,
        in_reply_to=job.payload.get("in_reply_to", ""),
    )


def outcome_text(job: Job, result: m.DeviceCommandResult) -> str:
    """What the user is told when the device answered."""
    action = job.payload["action"] + (f" {job.payload['value']}" if job.payload.get("value") else "")
    if result.ok:
        return say("device_done", job.language, device=job.title, action=action)
    return say("device_refused", job.language, device=job.title, error=result.error or "?")


def failure_text(job: Job) -> str:
    return say("device_no_answer", job.language, device=job.title, attempts=str(job.max_attempts))
