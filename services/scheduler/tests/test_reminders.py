"""What reminder intents turn into: the job, the listing, what "cancel the 5 pm one" means."""

from datetime import UTC, datetime

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import reminders
from switchboard.scheduler.jobs import Job

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 07:00 in New York, 20:00 in Shanghai


def _intent(
    intent: str, text: str, zone: str = "America/New_York", language: str = "en", **slots: str
) -> m.ParsedIntent:
    message = m.InboundMessage(
        message_id=f"msg-{abs(hash(text))}",
        channel=m.CHANNEL_TELEGRAM,
        channel_chat_id="chat-1",
        sender=m.Actor(user_id="telegram:1"),
        text=text,
    )
    return m.ParsedIntent(
        message=message,
        intent=intent,
        slots=[m.Slot(name=k, value=v) for k, v in slots.items()],
        time_zone=zone,
        language=language,
        person_id="person-1",
    )


def _job(hour: int, title: str, day: int = 24, rrule: str | None = None) -> Job:
    occurrence = datetime(2026, 11, day, hour + 5, tzinfo=UTC)  # New York is UTC-5 in November
    return Job(
        kind="reminder", owner="person-1", title=title, time_zone="America/New_York", occurrence=occurrence, rrule=rrule
    )


def test_a_reminder_is_planned_at_the_parsed_instant_for_the_person() -> None:
    intent = _intent(
        "reminder.create", "remind me at 5 pm to call Ken", datetime="2026-11-24T17:00:00-05:00", task="call Ken"
    )
    job = reminders.plan(intent, "conv-1", "default", NOW)
    assert isinstance(job, Job)
    assert job.occurrence == datetime(2026, 11, 24, 22, tzinfo=UTC) and job.owner == "person-1"
    assert (job.title, job.source_message_id, job.channel_chat_id) == ("call Ken", intent.message.message_id, "chat-1")
    assert reminders.confirmation(job) == "OK, I'll remind you to call Ken Tue 24 Nov 17:00."


def test_a_recurring_reminder_in_chinese() -> None:
    intent = _intent(
        "reminder.create",
        "每个工作日早上九点提醒我打卡",
        zone="Asia/Shanghai",
        language="zh",
        datetime="2026-11-25T09:00:00+08:00",
        rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0",
        task="打卡",
    )
    job = reminders.plan(intent, "conv-1", "default", NOW)
    assert isinstance(job, Job) and job.rrule is not None
    assert reminders.confirmation(job) == "好的，我会在11月25日 周三 09:00，之后每个工作日提醒您打卡。"
    assert reminders.firing(job, "id-1").text == "⏰ 提醒：打卡"


def test_no_time_a_past_time_and_a_broken_rule_are_explained() -> None:
    no_time = reminders.plan(_intent("reminder.create", "remind me to call Ken", task="call Ken"), "c", "t", NOW)
    assert isinstance(no_time, reminders.Refusal) and "When should I remind you" in no_time.text
    past = reminders.plan(_intent("reminder.create", "x", datetime="2026-11-24T06:00:00-05:00"), "c", "t", NOW)
    assert isinstance(past, reminders.Refusal) and "Tue 24 Nov 06:00 has already passed" in past.text
    broken = _intent("reminder.create", "x", datetime="2026-11-25T09:00:00-05:00", rrule="FREQ=NEVER")
    refusal = reminders.plan(broken, "c", "t", NOW)
    assert isinstance(refusal, reminders.Refusal) and "repeat" in refusal.text


def test_a_recurrence_whose_first_time_passed_starts_at_the_next_one() -> None:
    intent = _intent("reminder.create", "every day at 6", datetime="2026-11-24T06:00:00-05:00", rrule="FREQ=DAILY")
    job = reminders.plan(intent, "c", "t", NOW)
    assert isinstance(job, Job) and job.occurrence == datetime(2026, 11, 25, 11, tzinfo=UTC)


def test_listing_all_or_one_day() -> None:
    jobs = [_job(17, "call Ken"), _job(9, "stretch", day=27, rrule="FREQ=DAILY")]
    everything = reminders.listing(_intent("reminder.list", "show me my reminders"), jobs)
    assert everything == "Your reminders:\n• Tue 24 Nov 17:00 — call Ken\n• Fri 27 Nov 09:00 — stretch (every day)"
    friday = _intent("reminder.list", "what reminders do I have on Friday?", datetime="2026-11-27T09:00:00-05:00")
    assert reminders.listing(friday, jobs) == "Your reminders on Fri 27 Nov:\n• Fri 27 Nov 09:00 — stretch (every day)"
    assert reminders.listing(friday, []) == "You have no reminders on Fri 27 Nov."


def test_cancel_by_time_by_task_all_or_ask_which() -> None:
    jobs = [_job(17, "call Ken"), _job(17, "feed the cat", day=25), _job(9, "stretch", day=27)]
    by_time = _intent("reminder.cancel", "cancel the 5 pm one", datetime="2026-11-24T17:00:00-05:00")
    assert [j.title for j in reminders.to_cancel(by_time, jobs)[0]] == ["call Ken"]  # exact instant first
    by_clock = _intent("reminder.cancel", "cancel the 5 pm one", datetime="2026-11-26T17:00:00-05:00")
    chosen, ask = reminders.to_cancel(by_clock, jobs)  # no exact match: both 17:00 ones -> ask
    assert chosen == [] and ask is not None and "call Ken" in ask and "feed the cat" in ask
    by_task = _intent("reminder.cancel", "cancel my stretch reminder", task="stretch")
    assert [j.title for j in reminders.to_cancel(by_task, jobs)[0]] == ["stretch"]
    named = _intent("reminder.cancel", "cancel the feed the cat reminder")  # no task slot: the text names it
    assert [j.title for j in reminders.to_cancel(named, jobs)[0]] == ["feed the cat"]
    every = _intent("reminder.cancel", "cancel all my reminders")
    assert len(reminders.to_cancel(every, jobs)[0]) == 3
    unknown = _intent("reminder.cancel", "cancel the dentist reminder", task="dentist")
    assert reminders.to_cancel(unknown, jobs) == ([], "I found no reminder like that to cancel.")
    assert reminders.cancelled(jobs[:1], "en") == "Cancelled: call Ken (Tue 24 Nov 17:00)."
