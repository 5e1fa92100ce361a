"""Device state questions: "is the bedroom light on?" is answered from what the device last
said about itself, never sent to the chat model.

A device's status (its retained MQTT ``status``, a DeviceState from the gateway) and the state
in its command results are kept, the latest per device, in ``device_states``; ``changed_at``
is when its readings last changed, so the answer can say since when ("Yes, the bedroom light
is on (since 21:04)."). The registry (devices.yaml) says which devices a question can mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from switchboard.common.text import without_nul
from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.devices import Device, Registry
from switchboard.scheduler.reminders import language_of, say, slots_of, when

INTENT = "device.query"

# The reading that says what a device is doing: the first of these it reports.
_MAIN = ("power", "state", "position", "lock", "door", "contact", "running")
# The readings that answer "is it <asked>?" yes, by the parser's action word; the opposite
# action's readings answer no.
_MEANS = {
    "on": {"on", "true", "running", "playing", "heating", "cooling", "cleaning"},
    "off": {"off", "false", "idle", "stopped", "standby", "paused", "docked"},
    "open": {"open", "opened", "unlocked"},
    "close": {"closed", "close", "locked"},
}
_OPPOSITE = {"on": "off", "off": "on", "open": "close", "close": "open", "start": "off", "stop": "on"}
_MEANS |= {"start": _MEANS["on"], "stop": _MEANS["off"], "unlock": _MEANS["open"], "lock": _MEANS["close"]}
_OPPOSITE |= {"unlock": "close", "lock": "open"}
_ZH = {
    "on": "开着",
    "off": "关着",
    "open": "开着",
    "closed": "关着",
    "locked": "锁着",
    "unlocked": "没锁",
    "true": "开着",
}


@dataclass(frozen=True, slots=True)
class Known:
    """The latest a device said about itself."""

    state: dict[str, str]
    online: bool | None
    changed_at: datetime  # when its readings (or reachability) last changed


async def record(
    conn: asyncpg.Connection,
    device_id: str,
    state: dict[str, str],
    online: bool | None,
    at: datetime,
    *,
    replace: bool,
) -> None:
    """Keep what ``device_id`` said at ``at`` unless something later is already kept; ``replace``
    (a full status) drops readings it no longer reports, else (a command result) they merge."""
    state = {without_nul(k): without_nul(v) for k, v in state.items()}  # PostgreSQL text has no NUL
    await conn.execute(
        """
        INSERT INTO device_states (device_id, state, online, observed_at, changed_at)
        VALUES ($1, $2::jsonb, $3, $4, $4)
        ON CONFLICT (device_id) DO UPDATE SET
            state = CASE WHEN $5 THEN EXCLUDED.state ELSE device_states.state || EXCLUDED.state END,
            online = COALESCE(EXCLUDED.online, device_states.online),
            observed_at = EXCLUDED.observed_at,
            changed_at = CASE
                WHEN (CASE WHEN $5 THEN EXCLUDED.state ELSE device_states.state || EXCLUDED.state END)
                     IS DISTINCT FROM device_states.state
                  OR COALESCE(EXCLUDED.online, device_states.online) IS DISTINCT FROM device_states.online
                THEN EXCLUDED.observed_at ELSE device_states.changed_at END,
            updated_at = now()
        WHERE device_states.observed_at <= EXCLUDED.observed_at
        """,
        device_id,
        json.dumps(state),
        online,
        at,
        replace,
    )


async def latest(conn: asyncpg.Connection, device_ids: list[str]) -> dict[str, Known]:
    rows = await conn.fetch(
        "SELECT device_id, state, online, changed_at FROM device_states WHERE device_id = ANY($1::text[])", device_ids
    )
    return {r["device_id"]: Known(json.loads(r["state"]), r["online"], r["changed_at"]) for r in rows}


def candidates(intent: m.ParsedIntent, registry: Registry) -> list[Device]:
    """The devices a question is about: by kind (and room, when said), or every device in the
    room when only a room was said."""
    slots = slots_of(intent)
    kind, room = slots.get("device", ""), slots.get("room", "")
    if kind:
        return registry.find(kind, room)
    return [d for d in registry.devices if room and d.room == room]


def unanswerable(intent: m.ParsedIntent, found: list[Device]) -> str | None:
    """What to say when no device can be looked up, or None."""
    slots, language = slots_of(intent), language_of(intent)
    if found:
        return None
    if not slots.get("device") and not slots.get("room"):
        return say("device_which_one", language)
    where = slots.get("room", "").replace("_", " ")
    return say("device_unknown", language, device=slots.get("device", "device").replace("_", " "), room=where)


def answer(intent: m.ParsedIntent, found: list[Device], known: dict[str, Known], now: datetime) -> str:
    """One sentence per device; with one device and an asked state ("is it on?"), a yes or no."""
    language = language_of(intent)
    asked = slots_of(intent).get("state", "") if len(found) == 1 else ""
    zone = intent.time_zone or "UTC"
    return "\n".join(_sentence(device, known.get(device.id), asked, language, now, zone) for device in found)


def _sentence(device: Device, known: Known | None, asked: str, language: str, now: datetime, zone: str) -> str:
    name = device.name(language)
    if known is None or (not known.state and known.online is None):
        return say("device_silent", language, device=name)
    local = known.changed_at.astimezone(ZoneInfo(zone))
    today = now.astimezone(ZoneInfo(zone)).date()
    since = f"{local:%H:%M}" if local.date() == today else when(known.changed_at, zone, language)
    main = next((key for key in _MAIN if key in known.state), None)
    if main is not None:
        value = known.state[main].lower()
        reading = _ZH.get(value, value) if language == "zh" else value
        key = "device_state"
    else:
        reading = ", ".join(f"{k} {v}" for k, v in list(known.state.items())[:4]) or "—"
        key = "device_readings"
    if known.online is False:
        return say("device_offline", language, device=name, since=since, reading=reading)
    yes = ""
    if main is not None and asked in _MEANS:
        if value in _MEANS[asked]:
            yes = say("device_yes", language)
        elif value in _MEANS[_OPPOSITE[asked]]:
            yes = say("device_no", language)
    text = say(key, language, yes=yes, device=name, reading=reading, since=since)
    return text[:1].upper() + text[1:]
