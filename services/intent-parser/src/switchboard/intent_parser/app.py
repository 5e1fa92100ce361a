"""The Faust app: inbound -> filter, limit, remember, understand -> intents.

Four agents, each keyed so that the state it needs lives on its partitions:

- ``route`` reads ``inbound`` (keyed by conversation) and forwards each record, unchanged,
  to the parser's ``users`` topic keyed by the sender's channel identity.
- ``resolve`` reads ``users``: its ``identities`` table maps a channel identity to the
  person it is linked to (one person on Telegram, Feishu and the web), and it forwards the
  record to ``people`` keyed by that person.
- ``understand`` reads ``people``: one person's messages arrive in order on one partition.
  It drops a repeated channel message id (``seen``, windowed), counts the person's messages
  (``rate``, one-minute windows), screens the text (lexicon and injection patterns), answers
  the ``/link`` and ``/timezone`` commands, keeps the last turns, language and time zone
  (``context``) and produces a ``ParsedIntent``. A blocked or limited message gets a polite
  ``OutboundMessage`` and an ``AuditEvent`` instead. When the model's first two intents are
  close it asks which was meant ("Did you mean: 1) to set a reminder, or 2) just to chat?"),
  keeps the message in ``context``, and the next message, if it is "1" or "2", makes the
  intent of that earlier message; anything else is understood as a new message.
- ``links`` reads ``links`` (keyed by one-time code): ``/link`` on one account offers a code
  for its person, ``/link <code>`` on another claims it, the offering account confirms with
  ``/link allow <code>``, and the link goes back to ``resolve`` (keyed by the claiming
  identity), which records it (:mod:`switchboard.intent_parser.linking`).

Every table is changelogged to Kafka (the memory store is rebuilt from it on start), so
limits, context, dedupe and links survive a restart and move with their partition in a
rebalance. Processing is at least once: a record handled again after a crash produces events
with the same ids (:func:`switchboard.common.events.derived_id`), which consumers dedupe.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import faust
import mode
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError, Message

from switchboard.common import events, telemetry
from switchboard.common.backoff import delay as retry_delay
from switchboard.common.config import KafkaSettings
from switchboard.common.health import HealthServer
from switchboard.common.kafka import headers as hdr
from switchboard.common.kafka.security import ssl_context
from switchboard.common.metrics import DEAD_LETTERED, EVENTS_CONSUMED, EVENTS_PRODUCED, MetricsServer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.intent_parser import sensors
from switchboard.intent_parser.config import Settings
from switchboard.intent_parser.handlers import Parser, choice, language_of
from switchboard.intent_parser.linking import LINK_TO, Links, identity_of
from switchboard.intent_parser.rebalance import App

logger = logging.getLogger(__name__)

_TIMEZONE = re.compile(r"^\s*/(?:timezone|tz)(?:@\w+)?\s+(?P<zone>\S+)\s*$", re.IGNORECASE)
_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


# The parser's own topics and tables (each table changelogged to Settings.changelog_topic).
OWN_TOPICS = ("users", "people", "links")
TABLES = ("context", "seen", "rate", "identities", "codes")


def internal_topics(settings: Settings) -> list[str]:
    """The topics the parser needs besides the business ones (it declares none itself)."""
    return [*map(settings.own_topic, OWN_TOPICS), *map(settings.changelog_topic, TABLES)]


class Undecodable(ValueError):
    """A record whose value is not an Envelope carrying an InboundMessage."""


def decode(value: bytes | None) -> tuple[envelope_pb2.Envelope, m.InboundMessage]:
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(value or b"")
        message = events.unwrap(envelope)
    except (DecodeError, ValueError) as exc:
        raise Undecodable(f"undecodable value: {exc}") from exc
    if not isinstance(message, m.InboundMessage):
        raise Undecodable(f"expected InboundMessage, got {envelope.event_type or 'nothing'}")
    return envelope, message


def dedupe_key(message: m.InboundMessage) -> str:
    """What identifies a message across the channel's retries."""
    if message.channel_message_id:
        return f"{m.Channel.Name(message.channel)}:{message.channel_chat_id}:{message.channel_message_id}"
    return f"switchboard:{message.message_id}"


@dataclass
class Topics:
    inbound: faust.TopicT
    users: faust.TopicT
    people: faust.TopicT
    links: faust.TopicT
    intents: faust.TopicT
    outbound: faust.TopicT
    audit: faust.TopicT
    deadletter: faust.TopicT


def _schema() -> faust.Schema:
    """JSON keys and values, decoded to plain str / int / dict (not Faust models)."""
    return faust.Schema(key_serializer="json", value_serializer="json")


class Tables:
    """The parser's state, each table changelogged to its own compacted topic."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        def changelog(name: str) -> faust.TopicT:
            return app.topic(settings.changelog_topic(name), schema=_schema(), internal=True)

        def table(name: str, default: type) -> faust.Table:
            return app.Table(name, schema=_schema(), default=default, changelog_topic=changelog(name))

        def windowed(name: str, default: type, size: int, expires: int) -> Any:
            wrapper = table(name, default).tumbling(size, expires=expires)
            wrapper.table.changelog_topic = changelog(name)  # tumbling() forgets the one given
            return wrapper.relative_to_stream()

        # Channel identity -> person it is linked to (on the users topic's partitions).
        self.identities = table("identities", str)
        # One-time code -> {"person", "expires"} (on the links topic's partitions).
        self.link_codes = table("codes", dict)
        # Person -> {"turns": [...], "language", "time_zone"} (on the people topic's partitions).
        self.context = table("context", dict)
        window = settings.dedupe_window_s
        # Dedupe key -> event id that first carried it, per window; checked in this window and the last.
        self.seen = windowed("seen", str, window, 2 * window)
        # Person -> messages in the current minute (the record's timestamp decides the minute,
        # so a replay counts in the same window).
        self.rate = windowed("rate", int, settings.rate_window_s, 2 * settings.rate_window_s)


def broker_credentials(kafka: KafkaSettings) -> faust.auth.Credentials | None:
    """Faust's form of the Kafka security settings the other services pass to aiokafka
    (switchboard.common.kafka.security): the same TLS context, the same SASL account."""
    context = ssl_context(kafka)
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=password, ssl_context=context, mechanism=kafka.sasl_mechanism
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings, parser: Parser | None = None) -> faust.App:
    """A Faust app wired to the topics in ``settings``; ``parser`` is built from them if not given."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        producer_acks=-1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=6,
        # As large as the broker takes by default: the gateway caps a message's text well
        # below this; a record from elsewhere is trimmed (``route``), never a crash.
        producer_max_request_size=1_048_576,
        web_enabled=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        store="memory://",
        datadir=str(settings.data_dir / settings.app_id),
        broker_credentials=broker_credentials(settings.kafka),
    )
    topics = Topics(
        inbound=app.topic(settings.topics.inbound, **_RAW),
        users=app.topic(settings.own_topic("users"), **_RAW),
        people=app.topic(settings.own_topic("people"), **_RAW),
        links=app.topic(settings.own_topic("links"), **_RAW),
        intents=app.topic(settings.topics.intents, **_RAW),
        outbound=app.topic(settings.topics.outbound, **_RAW),
        audit=app.topic(settings.topics.audit, **_RAW),
        deadletter=app.topic(settings.topics.deadletter, **_RAW),
    )
    sensors.attach(app)
    tables = Tables(app, settings)
    understanding = Understanding(settings, parser or _load_parser(settings), topics, tables, on_fatal=app.crash)

    @app.agent(topics.inbound)
    async def route(stream: faust.StreamT[bytes]) -> None:
        await understanding.consume(stream, understanding.route)

    @app.agent(topics.users)
    async def resolve(stream: faust.StreamT[bytes]) -> None:
        await understanding.consume(stream, understanding.resolve)

    @app.agent(topics.people)
    async def understand(stream: faust.StreamT[bytes]) -> None:
        await understanding.consume(stream, understanding.handle)

    @app.agent(topics.links)
    async def links(stream: faust.StreamT[bytes]) -> None:
        await understanding.consume(stream, understanding.link)

    app.understanding = understanding  # type: ignore[attr-defined]
    return app


def _load_parser(settings: Settings) -> Parser:
    started = time.perf_counter()
    parser = Parser.from_config(
        settings.config_dir, settings.dataset_dir, settings.train_splits, settings.model_cache_dir
    )
    logger.info("parser ready", extra={"seconds": round(time.perf_counter() - started, 2)})
    return parser


def _headers(event: Any) -> list[tuple[str, bytes]]:
    raw = event.headers
    return list(raw.items()) if isinstance(raw, dict) else list(raw or [])


class Understanding:
    """What the four agents do with each record (kept apart from Faust's wiring for tests)."""

    def __init__(
        self,
        settings: Settings,
        parser: Parser,
        topics: Topics,
        tables: Tables,
        on_fatal: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.parser = parser
        self.topics = topics
        self.tables = tables
        # Called when a record can be neither handled nor dead-lettered (the app's crash:
        # the worker stops with the record uncommitted, and it is read again on restart).
        self._on_fatal = on_fatal
        self.links = Links(
            settings, parser, tables.link_codes, topics.links.send, topics.users.send, self._reply, self._audit
        )

    async def consume(self, stream: faust.StreamT[bytes], handler: Callable[[Any], Awaitable[None]]) -> None:
        """Each record of ``stream`` through :meth:`guarded`, acked once it was handled.

        Faust acks a record when the ``async for`` leaves it for any reason, and stopping a
        worker cancels its agents mid-record: the record being handled was acked, the stop's
        last commit passed over it, and nobody handled it (a rolling restart lost inbound
        messages this way, issue 21). The stream here does not ack; a record is acked after
        ``handler`` returned, so a cancelled one stays uncommitted and is read again."""
        manual = stream.noack()
        async for event in manual.events():
            await self.guarded(handler, event)
            await manual.ack(event)

    async def guarded(self, handler: Callable[[Any], Awaitable[None]], event: Any) -> None:
        """``handler(event)``, retried, so that one record's failure stops nobody else's.

        A Kafka error the client calls retriable (the broker away, a leader moving) is waited
        out however long it lasts; any other failure is retried ``kafka.handler_attempts``
        times with exponential backoff, then the record is dead-lettered with its cause. A
        record that cannot even be dead-lettered is never skipped: ``on_fatal`` stops the
        worker with it uncommitted."""
        attempts = max(1, self.settings.kafka.handler_attempts)
        backoff = self.settings.kafka.handler_backoff_s
        where = {"topic": event.message.topic, "offset": event.message.offset}
        attempt = outage = 0
        while True:
            try:
                await handler(event)
                return
            except Exception as exc:
                if isinstance(exc, KafkaError) and exc.retriable:
                    outage += 1
                    delay = retry_delay(outage, backoff, cap_s=10.0)
                    logger.warning(
                        "Kafka is unavailable; retrying", extra={**where, "error": repr(exc), "retry_in_s": delay}
                    )
                    await asyncio.sleep(delay)
                    continue
                attempt += 1
                if attempt < attempts:
                    logger.warning("record failed, retrying", extra={**where, "attempt": attempt, "error": repr(exc)})
                    await asyncio.sleep(retry_delay(attempt, backoff))
                    continue
                logger.exception("record failed on every attempt; dead-lettering", extra=where)
                cause = f"{type(exc).__name__}: {exc}"[:500]
            break
        try:
            await self._dead_letter(event, cause, reason="handler-error")
        except Exception as exc:  # e.g. the record is too large for the dead-letter topic too
            logger.critical("record could not be dead-lettered; stopping with it uncommitted", extra=where)
            if self._on_fatal is not None:
                await self._on_fatal(exc)
            raise

    # --- route and resolve: inbound (by conversation) -> users (by identity) -> people ------

    async def route(self, event: Any) -> None:
        try:
            envelope, message = decode(event.value)
        except Undecodable as exc:
            await self._dead_letter(event, str(exc))
            return
        identity = identity_of(envelope, message)
        value = event.value
        limit = self.settings.max_text_chars
        if len(message.text) > limit:
            # The gateway never sends this much; a record from elsewhere is trimmed, not refused.
            logger.warning("text trimmed", extra={"message_id": message.message_id, "chars": len(message.text)})
            message.metadata["switchboard.trimmed_from_chars"] = str(len(message.text))
            message.text = message.text[:limit]
            value = envelope.SerializeToString()
        await self.topics.users.send(key=identity.encode(), value=value, headers=_headers(event))

    async def resolve(self, event: Any) -> None:
        envelope, message = decode(event.value)  # route forwarded only what it could decode
        identity = _text(event.key)
        headers = dict(_headers(event))
        linked_to = headers.get(LINK_TO)
        if linked_to is not None:  # a claim of this identity's, accepted by ``links``
            person = linked_to.decode()
            if person != identity:
                self.tables.identities[identity] = person
            else:
                self.tables.identities.pop(identity, None)
            language = language_of(message.text, "en") or "en"
            # The claim's envelope: its ids tell this answer from the "confirm" one it had.
            await self._reply(envelope, message, self.parser.reply("link.done", language), "command", role="link.done")
            await self._audit(envelope, message, "identity.link", f"linked to {person}", {}, m.OUTCOME_SUCCESS)
            return
        person = self.tables.identities[identity] or identity
        await self.topics.people.send(key=person.encode(), value=event.value, headers=_headers(event))

    # --- understand: one person's messages, in order -----------------------------------------

    async def handle(self, event: Any) -> None:
        try:
            envelope, message = decode(event.value)
        except Undecodable as exc:
            await self._dead_letter(event, str(exc))
            return
        person = _text(event.key)
        EVENTS_CONSUMED.labels(topic=event.message.topic, event_type=envelope.event_type).inc()
        where = event.message
        with telemetry.consuming(envelope, where.topic, where.partition, where.offset, self.settings.app_id):
            await self._understand(event, envelope, message, person)

    async def _understand(
        self, event: Any, envelope: envelope_pb2.Envelope, message: m.InboundMessage, person: str
    ) -> None:
        delivery = self._delivery(message, envelope)
        if delivery == "repeat":
            logger.info("repeated channel message dropped", extra={"message_id": message.message_id})
            return
        context = dict(self.tables.context[person])
        language = language_of(message.text, context.get("language") or _locale_language(message.sender.locale))
        if await self._over_limit(event, envelope, message, person, language, counted=delivery == "again"):
            return
        blocked = self.parser.screen(message, language or "en")
        if blocked is not None:
            logger.info("message blocked", extra={"rule": blocked.verdict.rule, "message_id": message.message_id})
            await self._reply(envelope, message, blocked.reply, "blocked")
            await self._audit(envelope, message, "input.blocked", blocked.verdict.rule, {"rule": blocked.verdict.rule})
            return
        if await self._command(envelope, message, person, context, language or "en"):
            return
        zone = self._time_zone(message, context)
        occurred = envelope.occurred_at.ToDatetime(tzinfo=UTC) if envelope.HasField("occurred_at") else None
        said = occurred or datetime.now(UTC)
        pending = context.pop("clarify", None)  # a question is answered by the very next message
        picked = choice(message.text) if pending else None
        if pending and picked is not None:  # the earlier message, as the intent the user picked
            earlier = m.InboundMessage.FromString(base64.b64decode(pending["message"]))
            when = datetime.fromtimestamp(pending["said"], UTC)
            parsed = self.parser.understand(earlier, when, zone, language or "en", pending["options"][picked])
        else:
            parsed = self.parser.understand(message, said, zone, language or "en")
            if self.parser.close_call(parsed) and (question := self.parser.question(parsed, language or "en")):
                context["clarify"] = {
                    "message": base64.b64encode(message.SerializeToString()).decode(),
                    "said": said.timestamp(),
                    "options": [parsed.intent, parsed.runner_up],
                }
                self._remember(person, context, message, language, zone)
                await self._reply(envelope, message, question, "clarify")
                return
        parsed.person_id = person
        parsed.context.extend(
            m.ChatTurn(role=_ROLES[t["role"]], content=t["content"])
            for t in _before(context, parsed.message.message_id)
        )
        self._remember(person, context, message, language, zone)
        await self._emit(self.topics.intents, envelope, parsed, "parsed")

    def _delivery(self, message: m.InboundMessage, envelope: envelope_pb2.Envelope) -> str:
        """ "new"; "repeat" for a channel message id already handled in this window or the
        last one; "again" for the same event handled again after a crash or a rebalance.

        The table holds the id of the event that first carried the key: an event handled
        again is not a repeat (its outputs keep their ids), and is not counted twice.
        """
        key = dedupe_key(message)
        entry = self.tables.seen[key]
        first = entry.current() or entry.delta(self.settings.dedupe_window_s)
        if not first:
            self.tables.seen[key] = envelope.event_id
            return "new"
        return "again" if first == envelope.event_id else "repeat"

    async def _over_limit(
        self,
        event: Any,
        envelope: envelope_pb2.Envelope,
        message: m.InboundMessage,
        person: str,
        language: str,
        counted: bool,
    ) -> bool:
        """Count the message (unless ``counted`` already) and say whether it is over the limit."""
        limit = self.settings.rate_limit
        if not limit:
            return False
        rate = self.tables.rate
        if not counted:
            rate[person] += 1
        count = rate[person].current()
        if count <= limit:
            return False
        stamp = event.message.timestamp
        window = self.settings.rate_window_s
        retry = max(1, int(window - stamp % window) + 1)
        logger.info("rate limited", extra={"person": person, "count": count, "retry_s": retry})
        if count == limit + 1:  # say it once per window, not to every message
            text = self.parser.reply(
                "rate.limited", language or "en", seconds=retry, limit=limit, window=_period(window, language or "en")
            )
            await self._reply(envelope, message, text, "rate-limited")
        await self._audit(
            envelope, message, "rate.limited", f"{count} messages in {window} s, limit {limit}", {"retry_s": str(retry)}
        )
        return True

    async def _command(
        self, envelope: envelope_pb2.Envelope, message: m.InboundMessage, person: str, context: dict, language: str
    ) -> bool:
        if await self.links.command(envelope, message, person, context, language):
            self.tables.context[person] = context
            return True
        zone = _TIMEZONE.match(message.text)
        if zone is not None:
            try:
                ZoneInfo(zone["zone"])
            except (ZoneInfoNotFoundError, ValueError):
                await self._reply(envelope, message, f"Unknown time zone {zone['zone'][:64]!r}.", "command")
                return True
            context["time_zone"] = zone["zone"]
            self.tables.context[person] = context
            await self._reply(envelope, message, f"Time zone set to {zone['zone']}.", "command")
            return True
        return False

    async def link(self, event: Any) -> None:
        """An offer, a claim or a confirmation of a one-time code (see linking)."""
        envelope, message = decode(event.value)
        await self.links.handle(envelope, message, _text(event.key), dict(_headers(event)))

    def _time_zone(self, message: m.InboundMessage, context: dict) -> str:
        for zone in (message.sender.time_zone, context.get("time_zone")):
            if zone:
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
                return zone
        return self.settings.default_time_zone

    def _remember(self, person: str, context: dict, message: m.InboundMessage, language: str, zone: str) -> None:
        turns = list(context.get("turns", []))
        if any(t.get("id") == message.message_id for t in turns):
            return  # handled again after a crash or a rebalance: already remembered
        if message.text:
            content = message.text[: self.settings.context_turn_chars]
            turns.append({"role": "user", "content": content, "id": message.message_id})
        context["turns"] = turns[-self.settings.context_turns :]
        if language:
            context["language"] = language
        if message.sender.time_zone:
            context["time_zone"] = zone
        self.tables.context[person] = context

    # --- producing --------------------------------------------------------------------------

    async def _reply(
        self, envelope: envelope_pb2.Envelope, message: m.InboundMessage, text: str, why: str = "", role: str = "reply"
    ) -> None:
        """Answer ``message`` with ``text``; ``role`` tells apart two answers caused by one envelope."""
        reply = m.OutboundMessage(
            message_id=events.derived_id(envelope.event_id, role),
            in_reply_to=message.message_id,
            channel=message.channel,
            channel_chat_id=message.channel_chat_id,
            text=text,
            sequence=0,
            final=True,
            metadata={"source": self.settings.service_name, "reason": why} if why else {},
        )
        await self._emit(self.topics.outbound, envelope, reply, role)

    async def _audit(
        self,
        envelope: envelope_pb2.Envelope,
        message: m.InboundMessage,
        action: str,
        reason: str,
        labels: dict[str, str],
        outcome: m.Outcome.ValueType = m.OUTCOME_BLOCKED,
    ) -> None:
        record = m.AuditEvent(
            action=action,
            outcome=outcome,
            reason=reason,
            subject_event_id=envelope.event_id,
            actor=message.sender,
            labels={"channel": m.Channel.Name(message.channel), **labels},
        )
        await self._emit(self.topics.audit, envelope, record, f"audit:{action}")

    async def _emit(self, topic: faust.TopicT, cause: envelope_pb2.Envelope, payload: Message, role: str) -> None:
        out = events.wrap(
            payload,
            conversation_key=cause.conversation_key,
            source=self.settings.service_name,
            tenant_id=cause.tenant_id or self.settings.tenant_id,
            causation_id=cause.event_id,
            event_id=events.derived_id(cause.event_id, role),
        )
        with telemetry.producing(_topic_name(topic), out):  # the span's traceparent goes into ``out``
            await topic.send(
                key=out.conversation_key.encode(), value=out.SerializeToString(), headers=hdr.for_envelope(out)
            )
        EVENTS_PRODUCED.labels(topic=_topic_name(topic), event_type=out.event_type).inc()

    async def _dead_letter(self, event: Any, cause: str, reason: str = "undecodable") -> None:
        record = event.message
        logger.error("record dead-lettered", extra={"cause": cause, "topic": record.topic, "offset": record.offset})
        await self.topics.deadletter.send(
            key=event.key,
            value=event.value,
            headers=hdr.for_dead_letter(_headers(event), cause, record.topic, record.partition, record.offset),
        )
        DEAD_LETTERED.labels(topic=record.topic, reason=reason).inc()


_ROLES = {"user": m.ROLE_USER, "assistant": m.ROLE_ASSISTANT, "system": m.ROLE_SYSTEM}


def _before(context: dict, message_id: str) -> list[dict]:
    """The turns before ``message_id``'s: all of them, or, when the message is handled again
    (after a crash or a rebalance), those it had the first time."""
    turns: list[dict] = context.get("turns", [])
    ids = [t.get("id") for t in turns]
    return turns[: ids.index(message_id)] if message_id in ids else turns


def _period(seconds: int, language: str) -> str:
    """A window length as people say it: "a minute", "2 hours", "天"."""
    for size, en, zh in ((86400, "day", "天"), (3600, "hour", "小时"), (60, "minute", "分钟"), (1, "second", "秒")):
        if seconds % size == 0:
            n = seconds // size
            if language == "zh":
                return zh if n == 1 else f"{n} {zh}"
            return ("an " if en == "hour" else "a ") + en if n == 1 else f"{n} {en}s"
    raise AssertionError("unreachable: every whole number of seconds is a multiple of 1")


def _topic_name(topic: faust.ChannelT) -> str:
    try:
        return topic.get_topic_name()
    except NotImplementedError:  # an in-memory channel (the unit tests')
        return "channel"


def _text(key: Any) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


def _locale_language(locale: str) -> str:
    return locale.split("-", 1)[0].lower() if locale else ""


class Probes(mode.Service):
    """grpc.health.v1 and /metrics, started and stopped with the Faust worker.

    Ready (SERVING) only once the worker has been through its first rebalance and holds
    its partitions: faust-streaming can skip records fetched while a rebalance is in
    progress (faust-streaming#216/#221), so load is best sent to a settled group.
    """

    def __init__(self, app: faust.App, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._app = app
        self._health = HealthServer(settings.health_host, settings.health_port, services=(settings.service_name,))
        self._metrics = MetricsServer(settings.metrics_host, settings.metrics_port) if settings.metrics_port else None

    async def on_start(self) -> None:
        if self._metrics:
            self._metrics.start()
        await self._health.start()

    @mode.Service.task
    async def _report_ready(self) -> None:
        while self._app.rebalancing or self._app.rebalancing_count == 0:
            await self.sleep(0.1)
        await self._health.set_serving()

    async def on_stop(self) -> None:
        await self._health.set_not_serving()
        await self._health.stop()
        if self._metrics:
            self._metrics.stop()
