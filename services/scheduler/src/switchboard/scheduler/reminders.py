"""Reminders from chat: "remind me at 5 pm to call Ken", "list my reminders", "cancel the 5 pm one".

Pure decisions: what a ``reminder.*`` intent turns into (a job, a listing, the jobs to
cancel) and what the user is told, in their language (English or Chinese). The intent
parser has already resolved the time in the user's time zone (``datetime``: RFC 3339, the
first occurrence; ``rrule``: how it repeats) and the ``task``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import yaml

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.jobs import ROUTINE, URGENT, Job
from switchboard.scheduler.recurrence import InvalidRecurrence, Recurrence, describe, zone

KIND = "reminder"
INTENTS = frozenset({"reminder.create", "reminder.list", "reminder.cancel"})
MAX_TITLE_CHARS = 500
# The parser's reading of a bare date ("on Friday"): that day at 09:00.
_DEFAULT_HOUR = 9

# What the user is told, per language (en, zh): replies.yaml beside this module.
TEXTS: dict[str, dict[str, str]] = yaml.safe_load(resources.files(__package__).joinpath("replies.yaml").read_text())


def say(key: str, language: str, **values: str) -> str:
    texts = TEXTS[key]
    return texts.get(language, texts["en"]).format(**values)


def slots_of(intent: m.ParsedIntent) -> dict[str, str]:
    return {slot.name: slot.value for slot in intent.slots}


def language_of(intent: m.ParsedIntent) -> str:
    return "zh" if intent.language == "zh" else "en"


def when(moment: datetime, time_zone: str, language: str) -> str:
    """A moment as the owner reads it: "Tue 24 Nov 17:00" / "11月24日 周二 17:00"."""
    local = moment.astimezone(ZoneInfo(time_zone))
    if language == "zh":
        weekday = "一二三四五六日"[local.weekday()]
        return f"{local.month}月{local.day}日 周{weekday} {local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why no reminder was made, as the reply to send."""

    text: str


def plan(intent: m.ParsedIntent, conversation_key: str, tenant_id: str, now: datetime) -> Job | Refusal:
    """The reminder ``reminder.create`` asks for, or what to tell the user instead."""
    language = language_of(intent)
    slots = slots_of(intent)
    time_zone = intent.time_zone or "UTC"
    try:
        zone(time_zone)
    except InvalidRecurrence:
        time_zone = "UTC"
    if not slots.get("datetime"):
        return Refusal(say("no_time", language))
    try:
        first = datetime.fromisoformat(slots["datetime"])
    except ValueError:
        return Refusal(say("no_time", language))
    if first.tzinfo is None:
        first = first.replace(tzinfo=ZoneInfo(time_zone))
    recurrence = None
    if slots.get("rrule"):
        try:
            recurrence = Recurrence(time_zone, first, rrule=slots["rrule"])
        except InvalidRecurrence:
            return Refusal(say("bad_rule", language))
        upcoming = recurrence.after(now) if first <= now else first
        if upcoming is None:  # e.g. an UNTIL already past
            return Refusal(say("bad_rule", language))
        first = upcoming
    elif first <= now:
        return Refusal(say("past", language, when=when(first, time_zone, language)))
    task = (slots.get("task") or intent.message.text).strip()[:MAX_TITLE_CHARS]
    return Job.for_intent(
        intent,
        conversation_key=conversation_key,
        tenant_id=tenant_id,
        kind=KIND,
        title=task,
        time_zone=time_zone,
        occurrence=first,
        dtstart=first,
        rrule=slots.get("rrule") or None,
        language=language,
        priority=URGENT if intent.priority == m.PRIORITY_URGENT else ROUTINE,
    )


def confirmation(job: Job) -> str:
    language = job.language
    task = f" to {job.title}" if language != "zh" else job.title
    repeat = describe(job.recurrence, language)
    repeat = say("then", language, repeat=repeat) if repeat else ""
    return say("created", language, task=task, when=when(job.occurrence, job.time_zone, language), repeat=repeat)


def _item(job: Job, language: str) -> str:
    repeat = describe(job.recurrence, language)
    suffix = f" ({repeat})" if repeat else ""
    return f"• {when(job.occurrence, job.time_zone, language)} — {job.title}{suffix}"


def _on_day(intent: m.ParsedIntent) -> datetime | None:
    value = slots_of(intent).get("datetime")
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def listing(intent: m.ParsedIntent, jobs: Sequence[Job]) -> str:
    """The owner's reminders, or those on the day asked about ("what reminders do I have on Friday?")."""
    language = language_of(intent)
    day = _on_day(intent)
    on = ""
    if day is not None:
        jobs = [j for j in jobs if j.occurrence.astimezone(day.tzinfo).date() == day.date()]
        on = f" on {day:%a} {day.day} {day:%b}" if language != "zh" else f"{day.month}月{day.day}日"
    if not jobs:
        return say("none", language, on=on)
    return say("list", language, on=on, items="\n".join(_item(j, language) for j in jobs))


def to_cancel(intent: m.ParsedIntent, jobs: Sequence[Job]) -> tuple[list[Job], str | None]:
    """Which of the owner's reminders "cancel …" means: (jobs, None) to cancel them, or
    ([], reply) when it is none or not clear which."""
    language = language_of(intent)
    slots = slots_of(intent)
    text = intent.message.text.lower()
    every = any(word in text for word in (" all", "every", "所有", "全部"))
    chosen = list(jobs)
    moment = _on_day(intent)
    if moment is not None:
        exact = [j for j in chosen if j.occurrence == moment]
        local = moment.astimezone(ZoneInfo(jobs[0].time_zone)) if jobs else moment
        same_time = [j for j in chosen if _clock(j) == (local.hour, local.minute)]
        same_day = [j for j in chosen if j.occurrence.astimezone(local.tzinfo).date() == local.date()]
        bare_date = (local.hour, local.minute) == (_DEFAULT_HOUR, 0)
        chosen = exact or same_time or (same_day if bare_date else [])
    task = (slots.get("task") or "").lower()
    if task:
        chosen = [j for j in chosen if task in j.title.lower() or j.title.lower() in task] or (
            chosen if moment is not None else []
        )
    else:  # "cancel the stretch reminder": the task named in the message itself
        chosen = [j for j in chosen if j.title.lower() in text] or chosen
    if not chosen:
        return [], say("no_match", language)
    if len(chosen) > 1 and not every:
        return [], say("which", language, items="\n".join(_item(j, language) for j in chosen))
    return chosen, None


def _clock(job: Job) -> tuple[int, int]:
    local = job.occurrence.astimezone(ZoneInfo(job.time_zone))
    return local.hour, local.minute


def cancelled(jobs: Sequence[Job], language: str) -> str:
    items = "; ".join(f"{j.title} ({when(j.occurrence, j.time_zone, language)})" for j in jobs)
    return say("cancelled", language, items=items)


def firing(job: Job, message_id: str) -> m.OutboundMessage:
    """What the owner receives when the reminder fires."""
    return job.message(say("fire", job.language, task=job.title), message_id, occurrence=job.occurrence.isoformat())


def failure_notice(job: Job, message_id: str) -> m.OutboundMessage:
    """What the owner is told when a reminder could not be delivered after every attempt."""
    text = say("failed", job.language, task=job.title, when=when(job.occurrence, job.time_zone, job.language))
    return job.message(text, message_id, error=job.last_error or "")
