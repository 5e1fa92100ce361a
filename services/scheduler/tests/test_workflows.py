"""Workflow definitions: what loads, what is refused, and what each step computes."""

from datetime import UTC, datetime

import pytest

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler import workflows
from switchboard.scheduler.workflows import InvalidWorkflow

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
FLOWS = workflows.Workflows.load()  # the packaged ticket-classification example
TICKETS = FLOWS.by_name["ticket-classification"]


def _run(text: str, category: str = "", language: str = "en") -> workflows.Job:
    message = m.InboundMessage(message_id="msg-1", channel=m.CHANNEL_HTTP, channel_chat_id="chat-1", text=text)
    intent = m.ParsedIntent(
        message=message,
        intent="ticket.create",
        slots=[m.Slot(name="category", value=category)] if category else [],
        language=language,
        person_id="person-1",
    )
    return FLOWS.start(TICKETS, intent, "conv-1", "t", NOW)


def test_the_example_starts_from_its_intent_with_the_message_as_input() -> None:
    run = _run("I was charged twice this month", "billing")
    assert FLOWS.by_intent["ticket.create"] is TICKETS
    assert [s.call for s in TICKETS.steps] == ["validate", "model", "insert", "reply"]
    assert run.payload["input"] == {"text": "I was charged twice this month", "category": "billing"}
    assert (run.kind, run.owner, run.source_message_id, run.payload["step"]) == ("workflow", "person-1", "msg-1", 0)


def test_validation_refuses_too_little_to_file_in_the_users_language() -> None:
    check = TICKETS.steps[0]
    assert workflows.validate(check, _run("I was charged twice this month")).refused is False
    refused = workflows.validate(check, _run("help", language="zh"))
    assert refused.refused and refused.reply == "请用一两句话描述问题，我会为您提交工单。"


def test_the_model_step_asks_and_its_answer_counts_only_when_it_names_one_category() -> None:
    classify = TICKETS.steps[1]
    run = _run("my parcel never came", "delivery")
    asked = workflows.model_request(classify, run, "req-1").request
    assert asked is not None and not asked.stream and asked.request_id == "req-1"
    assert "Ticket: my parcel never came" in asked.messages[0].content
    assert workflows.model_answer(classify, run, "Delivery.") == {
        "value": "delivery",
        "by": "model",
        "answer": "Delivery.",
    }
    both = workflows.model_answer(classify, run, "billing or delivery")
    assert (both["value"], both["by"]) == ("delivery", "keywords")  # the parser's category
    assert workflows.model_answer(classify, _run("something odd happened"), "no idea")["value"] == "other"


def test_insert_and_reply_render_from_the_runs_state() -> None:
    run = _run("my parcel never came", "delivery")
    run.payload["outputs"] = {"classify": {"value": "delivery", "by": "model"}, "file": {"id": 42}}
    table, values = workflows.insert_values(TICKETS.steps[2], run)
    assert (table, values) == (
        "tickets",
        {"owner": "person-1", "text": "my parcel never came", "category": "delivery", "classified_by": "model"},
    )
    assert workflows.reply_text(TICKETS.steps[3], run).startswith("Ticket #42 is filed under “delivery”")


@pytest.mark.parametrize(
    ("yaml_text", "error"),
    [
        ("name: x\ntrigger: {intent: a}\nsteps: [{name: s, call: shell}]", "call in"),
        (
            "name: x\ntrigger: {intent: a}\nsteps: [{name: s, call: insert, table: users, values: {a: b}}]",
            "insert into",
        ),
        (
            "name: x\ntrigger: {intent: a}\nsteps: [{name: s, call: insert, table: tickets, values: {id: 1}}]",
            "insert into",
        ),
        ("name: x\ntrigger: {intent: a}\nsteps: [{name: s, call: model, prompt: p}]", "prompt and choices"),
        ("name: x\nsteps: [{name: s, call: reply, text: hi}]", "trigger intent"),
        (
            "name: x\ntrigger: {intent: a}\nsteps: [{name: s, call: reply, text: a}, {name: s, call: reply, text: b}]",
            "unique",
        ),
    ],
)
def test_a_definition_that_cannot_run_is_refused_at_load(yaml_text: str, error: str) -> None:
    with pytest.raises(InvalidWorkflow, match=error):
        workflows.parse(yaml_text)
