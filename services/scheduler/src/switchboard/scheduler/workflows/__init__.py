"""Workflows declared in YAML: an intent starts a run, the run's steps execute one at a time.

A run is a job (kind ``workflow``) whose payload keeps the workflow's name, its input, the
step it is at and every finished step's output, so the state survives any restart and each
step commits together with the run's progress (a filed ticket and "step 3 done" are one
transaction). Step kinds (``call``):

- ``validate``: the input against a JSON Schema; invalid input ends the run with the step's
  ``refusal`` reply (bad input is an answer, not a failure to retry);
- ``model``: an InferenceRequest with the rendered ``prompt``; the run waits for its
  InferenceResult (``timeout_s``), and the answer counts when it names exactly one of
  ``choices`` (else the rendered ``fallback``, else the last choice);
- ``insert``: a row into one of the tables in ``TABLES``, its id the step's output;
- ``reply``: a message to the user, in their language.

A failing step is retried ``retries`` times with the scheduler's backoff; after the last, the
run is dead-lettered and the user told. Templates are ``str.format`` fields over ``input``,
``steps`` (outputs by step name) and ``run`` (``owner``, ``id``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from switchboard.events.v1 import messages_pb2 as m
from switchboard.scheduler.jobs import ROUTINE, Job
from switchboard.scheduler.reminders import language_of, slots_of

KIND = "workflow"
CALLS = frozenset({"validate", "model", "insert", "reply"})
# Tables an ``insert`` step may write, and their columns (workflows are configuration, but
# SQL names are never taken from it unchecked).
TABLES: dict[str, frozenset[str]] = {"tickets": frozenset({"owner", "text", "category", "classified_by"})}


class InvalidWorkflow(ValueError):
    """A workflow definition that cannot run; the message says where."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    call: str
    options: dict[str, Any]
    retries: int = 0
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    intent: str
    steps: tuple[Step, ...]
    description: str = ""


@dataclass(slots=True)
class Outcome:
    """What running one step came to."""

    output: Any = None
    request: m.InferenceRequest | None = None  # a model step: sent, now waiting
    reply: str | None = None  # text for the user
    refused: bool = False  # validation said no: the run ends here, answered
    values: dict[str, Any] = field(default_factory=dict)


def _step(raw: Mapping[str, Any], workflow: str) -> Step:
    where = f"workflow {workflow!r}, step {raw.get('name')!r}"
    call = raw.get("call")
    if not raw.get("name") or call not in CALLS:
        raise InvalidWorkflow(f"{where}: needs a name and a call in {sorted(CALLS)}")
    options = {k: v for k, v in raw.items() if k not in ("name", "call", "retries", "timeout_s")}
    if call == "validate":
        jsonschema.Draft202012Validator.check_schema(options.get("schema") or {})
    if call == "model" and not (options.get("prompt") and options.get("choices")):
        raise InvalidWorkflow(f"{where}: a model step needs a prompt and choices")
    if call == "insert":
        table, values = options.get("table"), options.get("values") or {}
        if table not in TABLES or not values or set(values) - TABLES[table]:
            raise InvalidWorkflow(f"{where}: insert into one of {sorted(TABLES)} with their columns only")
    if call == "reply" and not options.get("text"):
        raise InvalidWorkflow(f"{where}: a reply step needs text")
    return Step(raw["name"], call, options, int(raw.get("retries", 0)), float(raw.get("timeout_s", 60)))


def parse(text: str) -> Workflow:
    raw = yaml.safe_load(text) or {}
    name = str(raw.get("name") or "")
    steps = tuple(_step(s, name) for s in raw.get("steps") or [])
    if not name or not steps or not (raw.get("trigger") or {}).get("intent"):
        raise InvalidWorkflow(f"workflow {name!r}: needs a name, a trigger intent and steps")
    if len({s.name for s in steps}) != len(steps):
        raise InvalidWorkflow(f"workflow {name!r}: step names must be unique")
    return Workflow(name, raw["trigger"]["intent"], steps, str(raw.get("description", "")))


class Workflows:
    """The workflows in a folder of YAML files (the packaged examples by default)."""

    def __init__(self, workflows: list[Workflow]) -> None:
        self.by_name = {w.name: w for w in workflows}
        self.by_intent = {w.intent: w for w in workflows}

    @classmethod
    def load(cls, directory: Path | None = None) -> Workflows:
        if directory is None:
            files = [f for f in resources.files(__package__).iterdir() if f.name.endswith(".yaml")]
            return cls([parse(f.read_text()) for f in sorted(files, key=lambda f: f.name)])
        return cls([parse(p.read_text()) for p in sorted(directory.glob("*.yaml"))])

    def start(
        self, workflow: Workflow, intent: m.ParsedIntent, conversation_key: str, tenant_id: str, now: datetime
    ) -> Job:
        """The run ``intent`` starts: a job due now, at its first step."""
        return Job.for_intent(
            intent,
            conversation_key=conversation_key,
            tenant_id=tenant_id,
            kind=KIND,
            title=workflow.name,
            time_zone=intent.time_zone or "UTC",
            occurrence=now,
            language=language_of(intent),
            priority=ROUTINE,
            payload={
                "workflow": workflow.name,
                "input": {"text": intent.message.text, "category": slots_of(intent).get("category", "")},
                "step": 0,
                "outputs": {},
            },
        )


def context(job: Job) -> dict[str, Any]:
    return {
        "input": job.payload.get("input", {}),
        "steps": job.payload.get("outputs", {}),
        "run": {"owner": job.owner, "id": job.id},
    }


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with its fields filled from ``values`` (KeyError names a missing one)."""
    return string.Formatter().vformat(template, (), dict(values))


def localised(text: Any, language: str) -> str:
    if isinstance(text, Mapping):
        return str(text.get(language) or text.get("en") or next(iter(text.values())))
    return str(text)


def choose(answer: str, choices: list[str], fallback: str) -> dict[str, str]:
    """The category a model's answer names: exactly one of ``choices``, else ``fallback``
    (when it is one of them), else the last choice."""
    words = {w.strip(".,:;!?\"'()[]").lower() for w in answer.split()}
    named = [c for c in choices if c.lower() in words]
    if len(named) == 1:
        return {"value": named[0], "by": "model", "answer": answer[:500]}
    if fallback in choices:
        return {"value": fallback, "by": "keywords", "answer": answer[:500]}
    return {"value": choices[-1], "by": "default", "answer": answer[:500]}


def current(workflows: Workflows, job: Job) -> Step:
    workflow = workflows.by_name.get(job.payload.get("workflow", ""))
    if workflow is None:
        raise KeyError(f"no workflow named {job.payload.get('workflow')!r}")
    return workflow.steps[int(job.payload.get("step", 0))]


def is_last(workflows: Workflows, job: Job) -> bool:
    return int(job.payload.get("step", 0)) + 1 >= len(workflows.by_name[job.payload["workflow"]].steps)


def validate(step: Step, job: Job) -> Outcome:
    errors = sorted(jsonschema.Draft202012Validator(step.options["schema"]).iter_errors(job.payload["input"]), key=str)
    if errors:
        return Outcome(refused=True, reply=localised(step.options.get("refusal", errors[0].message), job.language))
    return Outcome(output={"valid": True})


def model_request(step: Step, job: Job, request_id: str) -> Outcome:
    prompt = render(step.options["prompt"], context(job))
    request = m.InferenceRequest(
        request_id=request_id,
        message_id=job.payload.get("in_reply_to", ""),
        model_profile=step.options.get("profile", "general"),
        priority=m.PRIORITY_ROUTINE,
        messages=[m.ChatTurn(role=m.ROLE_USER, content=prompt)],
        params=m.GenerationParams(max_tokens=int(step.options.get("max_tokens", 16)), temperature=0),
        stream=False,  # the answer is for the workflow, not shown to the user as it comes
    )
    return Outcome(request=request)


def model_answer(step: Step, job: Job, answer: str) -> dict[str, str]:
    fallback = render(str(step.options.get("fallback", "")), context(job))
    return choose(answer, list(step.options["choices"]), fallback)


def insert_values(step: Step, job: Job) -> tuple[str, dict[str, str]]:
    values = {column: render(str(template), context(job)) for column, template in step.options["values"].items()}
    return step.options["table"], values


def reply_text(step: Step, job: Job) -> str:
    return render(localised(step.options["text"], job.language), context(job))
