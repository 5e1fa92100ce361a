"""Plugin calls: the job an intent becomes, the request each attempt sends, what the user hears."""

from datetime import UTC, datetime, timedelta

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import plugins

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
UNITS = m.PluginRegistration(
    name="units",
    version="1.2.0",
    title={"en": "the unit converter", "zh": "单位换算"},
    intents=["units.convert"],
    request_topic="t.units.requests",
    reply_topic="t.replies",
    timeout_s=4,
)


def _intent(text: str, language: str = "en") -> m.ParsedIntent:
    message = m.InboundMessage(message_id="msg-1", channel=m.CHANNEL_HTTP, channel_chat_id="chat-1", text=text)
    message.sender.user_id = "http:alice"
    return m.ParsedIntent(
        message=message, intent="units.convert", language=language, time_zone="Europe/Berlin", person_id="person-1"
    )


def test_the_job_remembers_the_plugin_and_the_whole_intent() -> None:
    job = plugins.plan(_intent("convert 5 miles to km"), UNITS, "conv-1", "acme", NOW, attempts=3)
    assert (job.kind, job.title, job.owner, job.max_attempts, job.priority) == (
        "plugin",
        "the unit converter",
        "person-1",
        3,
        1,
    )
    assert (job.source_message_id, job.channel_chat_id, job.time_zone) == ("msg-1", "chat-1", "Europe/Berlin")
    assert job.payload["request_topic"] == "t.units.requests" and job.payload["version"] == "1.2.0"
    assert plugins.answer_within(job) == timedelta(seconds=4)


def test_every_attempt_sends_the_same_request_id_with_a_fresh_deadline() -> None:
    job = plugins.plan(_intent("convert 5 miles to km"), UNITS, "conv-1", "acme", NOW, attempts=3)
    first = plugins.request(job, NOW)
    job.attempts = 1
    again = plugins.request(job, NOW + timedelta(seconds=9))
    assert first.request_id == again.request_id == job.id
    assert (first.attempt, again.attempt) == (1, 2)
    assert first.intent.message.text == "convert 5 miles to km" and first.intent.person_id == "person-1"
    assert again.deadline.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=13)


def test_what_the_user_is_told_in_their_language() -> None:
    job = plugins.plan(_intent("100华氏度是多少摄氏度", "zh"), UNITS, "conv-1", "acme", NOW, attempts=2)
    assert job.title == "单位换算"
    assert (
        plugins.reply_text(job, m.PluginReply(ok=True, text="100 华氏度 = 37.78 摄氏度")) == "100 华氏度 = 37.78 摄氏度"
    )
    assert "单位换算无法完成" in plugins.reply_text(job, m.PluginReply(ok=False, error="boom"))
    assert plugins.failure_text(job) == "抱歉，单位换算没有响应（已尝试 2 次），请稍后再试。"
    english = plugins.plan(_intent("5 km to m"), UNITS, "conv-1", "acme", NOW, attempts=3)
    assert plugins.failure_text(english).startswith("Sorry, the unit converter is not answering (3 tries)")
