"""Plugin calls: an intent that an enabled plugin handles becomes a ``plugin`` job, which sends
the plugin a PluginRequest and waits for its PluginReply, like a device command waits for its
device: no reply in time is a failed attempt, asked again after the backoff, and after the
last one the user is told and the job is dead-lettered.

The request id is the job id on every attempt, so the plugin answers once and a late answer
to an earlier attempt still completes the job. Which plugins exist comes from the catalogue
(:class:`switchboard.common.plugins.Catalogue`); which may be called, from configuration.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.jobs import URGENT, Job
from switchboard.scheduler.reminders import language_of, say  # texts: replies.yaml

KIND = "plugin"


def plan(
    intent: m.ParsedIntent,
    plugin: m.PluginRegistration,
    conversation_key: str,
    tenant_id: str,
    now: datetime,
    attempts: int,
) -> Job:
    """The job that calls ``plugin`` with ``intent``."""
    language = language_of(intent)
    return Job.for_intent(
        intent,
        conversation_key=conversation_key,
        tenant_id=tenant_id,
        kind=KIND,
        title=plugin.title.get(language) or plugin.title.get("en") or plugin.name,
        time_zone=intent.time_zone or "UTC",
        occurrence=now,
        language=language,
        priority=URGENT,  # someone is waiting for the answer in the chat
        max_attempts=attempts,
        payload={
            "plugin": plugin.name,
            "version": plugin.version,
            "request_topic": plugin.request_topic,
            "timeout_s": plugin.timeout_s or 10.0,
            # The intent as the plugin gets it, on every attempt.
            "intent": base64.b64encode(intent.SerializeToString()).decode(),
        },
    )


def answer_within(job: Job) -> timedelta:
    return timedelta(seconds=float(job.payload.get("timeout_s", 10.0)))


def request(job: Job, now: datetime) -> m.PluginRequest:
    """The PluginRequest of ``job``'s current attempt (the same request id on every one)."""
    deadline = Timestamp()
    deadline.FromDatetime(now + answer_within(job))
    return m.PluginRequest(
        request_id=job.id,
        plugin=job.payload["plugin"],
        intent=m.ParsedIntent.FromString(base64.b64decode(job.payload["intent"])),
        deadline=deadline,
        attempt=job.attempts + 1,
    )


def reply_text(job: Job, reply: m.PluginReply) -> str:
    """What the user is told when the plugin answered."""
    return reply.text or say("plugin_refused", job.language, plugin=job.title)


def failure_text(job: Job) -> str:
    return say("plugin_no_answer", job.language, plugin=job.title, attempts=str(job.max_attempts))
