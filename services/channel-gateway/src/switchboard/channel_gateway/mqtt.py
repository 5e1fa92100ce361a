"""MQTT (aiomqtt, Mosquitto): device commands in, answers and DeviceCommands out.

Topics, under a namespace (``switchboard`` by default), for a device whose MQTT username is
its id (the broker's ACL lets it touch only its own topics):

- ``<ns>/devices/<id>/commands``: the device asks, QoS 1, ``{"text": "...", "id": "..."}``
  (``id`` optional: a repeat of the same id is answered once);
- the answer goes to the MQTT 5 response topic with the request's correlation data, or to
  ``<ns>/devices/<id>/replies`` for MQTT 3.1.1 devices; a response topic outside the
  device's own ``replies`` is refused;
- ``<ns>/devices/<id>/control``: DeviceCommands from the scheduler, QoS 1;
- ``<ns>/devices/<id>/control/result``: the device's answer to one, QoS 1,
  ``{"command_id": "...", "ok": true, "error": "...", "state": {"power": "off"}}``, put on
  Kafka as a DeviceCommandResult (then acknowledged to the broker, like commands);
- ``<ns>/devices/<id>/status``: the device's own retained status (and last will), a JSON
  object of readings (``{"power": "on", "brightness": 80}``; ``"online"``, a boolean, says
  whether it is reachable) or plain ``online`` / ``offline``. Put on Kafka as a DeviceState
  (the scheduler answers "is the bedroom light on?" from the latest). Every replica
  subscribes (a shared subscription gets no retained messages), so each status is forwarded
  once per replica: harmless, the latest wins;
- ``<ns>/gateway/status`` is the gateway's, retained, ``offline`` by last will.

A malformed command gets an error answer (``{"error": ..., "status": 4xx}``) and an audit
event, never a crash. Commands are acknowledged to the broker (PUBACK) only once they are on
Kafka: the session is persistent (fixed client id, no clean start), so a command in flight
when a gateway dies is delivered again when it reconnects. Replicas share the commands
through a shared subscription.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.channel_gateway.dedupe import Deliveries
from switchboard.channel_gateway.rejections import Record, Rejected
from switchboard.channel_gateway.targets import ReplyTargets
from switchboard.common import events
from switchboard.common import text as text_rules
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.lifecycle import sleep_unless_stopped, until_stopped
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)

CHANNEL = "mqtt"
DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # no "/", "+" or "#": one topic level
_IDS = uuid.UUID("9e3c1f4a-2b7d-4c58-a1e6-0d4f7b8c2a93")


class CommandIn(BaseModel):
    """What a device publishes on its ``commands`` topic."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")


class ResultIn(BaseModel):
    """What a device publishes on its ``control/result`` topic."""

    model_config = ConfigDict(extra="forbid")

    command_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ok: bool
    error: str = Field(default="", max_length=500)
    state: dict[str, str] = Field(default_factory=dict, max_length=50)


def parse_result(payload: bytes, max_bytes: int) -> ResultIn:
    """The command result in ``payload``, or Rejected with the reason."""
    if len(payload) > max_bytes:
        raise Rejected(413, f"payload is larger than {max_bytes} bytes")
    try:
        return ResultIn.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise Rejected(422, f"{where}: {first['msg']}") from exc


_REACHABLE = {"online": True, "offline": False}
MAX_READINGS = 50


def parse_status(payload: bytes, max_bytes: int) -> tuple[dict[str, str], bool | None] | None:
    """A device's status: its readings and whether it is reachable (None: unsaid); None for an
    empty payload (a retained status being cleared); Rejected with the reason otherwise.
    Scalar members of a JSON object are readings (numbers and booleans as text); nested
    objects and lists are skipped."""
    if len(payload) > max_bytes:
        raise Rejected(413, f"payload is larger than {max_bytes} bytes")
    text = payload.strip()
    if not text:
        return None
    word = text.decode("utf-8", "replace").strip('"').lower()
    if word in _REACHABLE:
        return {}, _REACHABLE[word]
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise Rejected(400, 'status is not JSON; send {"power": "on", ...} or "online" / "offline"') from exc
    if not isinstance(body, dict):
        raise Rejected(422, "status must be a JSON object")
    online = body.pop("online", None)
    if online is not None and not isinstance(online, bool):
        raise Rejected(422, "online: must be true or false")
    readings = {}
    for key, value in body.items():
        if isinstance(value, dict | list) or value is None:
            continue
        reading = str(value).lower() if isinstance(value, bool) else str(value)
        if len(key) > 64 or len(reading) > 200:
            raise Rejected(422, f"{key[:64]}: names are at most 64 characters, values at most 200")
        readings[key] = reading
    if len(readings) > MAX_READINGS:
        raise Rejected(422, f"at most {MAX_READINGS} readings")
    return readings, online


def parse_command(payload: bytes, max_bytes: int, max_chars: int) -> CommandIn:
    """The command in ``payload``, or Rejected with the reason."""
    if len(payload) > max_bytes:
        raise Rejected(413, f"payload is larger than {max_bytes} bytes")
    try:
        command = CommandIn.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] in ("json_invalid", "json_type"):
            raise Rejected(400, 'payload is not JSON; send {"text": "..."}') from exc
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise Rejected(422, f"{where}: {first['msg']}") from exc
    if len(command.text) > max_chars:
        raise Rejected(422, f"text is longer than {max_chars} characters")
    if (why := text_rules.refusal(command.text)) is not None:
        raise Rejected(422, why)
    return command


def reply_topic(namespace: str, device: str, requested: str | None) -> str:
    """Where answers to ``device`` go: its MQTT 5 response topic if that is one of its own
    ``replies`` topics, else its default ``replies`` topic; a foreign one is Rejected."""
    default = f"{namespace}/devices/{device}/replies"
    if not requested or requested == default:
        return default
    if requested.startswith(default + "/") and not any(c in requested for c in "+#\0"):
        return requested
    raise Rejected(403, f"response topic must be {default} or below it")


def message_id_for(device: str, command_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"{CHANNEL}:{device}:{command_id}"))


class MqttChannel:
    """The MQTT side of the gateway: one persistent broker session per replica."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str,
        namespace: str,
        share_group: str,
        session_expiry_s: int,
        deliveries: Deliveries,
        targets: ReplyTargets,
        record_rejection: Record,
        max_bytes: int,
        max_chars: int,
        publish_result: Callable[[m.DeviceCommandResult | m.DeviceState], Awaitable[None]],
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._connect = {"hostname": host, "port": port, "username": username, "password": password}
        self._tls_context = tls_context
        self._client_id = client_id
        self._namespace = namespace
        self._share_group = share_group
        self._session_expiry_s = session_expiry_s
        self._deliveries = deliveries
        self._targets = targets
        self._record_rejection = record_rejection
        self._max_bytes = max_bytes
        self._max_chars = max_chars
        self._publish_result = publish_result
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()

    @property
    def status_topic(self) -> str:
        return f"{self._namespace}/gateway/status"

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected (reconnecting after a broker outage) and take commands until ``stop``."""
        while not stop.is_set():
            session = asyncio.create_task(self._session())
            await until_stopped(stop, session)
            if not session.done():
                session.cancel()
            try:
                await session
            except asyncio.CancelledError:
                pass
            except aiomqtt.MqttError as exc:
                logger.warning("mqtt connection lost; reconnecting", extra={"error": str(exc)})
                await sleep_unless_stopped(stop, 2)
            except Exception:  # Kafka or PostgreSQL away: unacknowledged commands come again
                logger.exception("mqtt command could not be accepted; reconnecting")
                await sleep_unless_stopped(stop, 2)

    async def connected(self, timeout_s: float = 30) -> None:
        """Return once subscribed to the devices' commands, or after ``timeout_s`` (the other
        channels need not wait for a broker that is away; commands then wait in it)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError:
            logger.warning("mqtt not connected yet; serving the other channels", extra={"waited_s": timeout_s})

    async def _session(self) -> None:
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = self._session_expiry_s
        offline = aiomqtt.Will(self.status_topic, b'{"online": false}', qos=1, retain=True)
        client = aiomqtt.Client(
            **self._connect,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=connect,
            will=offline,
            timeout=10,
            # paho leaves Nagle on: every QoS 1 round trip would wait for a delayed ACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            tls_context=self._tls_context,
        )
        async with client:
            # PUBACK only once a command is on Kafka (aiomqtt has no switch for it yet:
            # empicano/aiomqtt#345; this is the workaround given there).
            client._client.manual_ack_set(True)
            self._client = client
            try:
                await client.subscribe(f"$share/{self._share_group}/{self._namespace}/devices/+/commands", qos=1)
                await client.subscribe(f"$share/{self._share_group}/{self._namespace}/devices/+/control/result", qos=1)
                await client.subscribe(f"{self._namespace}/devices/+/status", qos=1)
                await client.publish(self.status_topic, b'{"online": true}', qos=1, retain=True)
                self._connected.set()
                logger.info("mqtt connected", extra={"client_id": self._client_id})
                try:
                    async for message in client.messages:
                        if str(message.topic).endswith("/control/result"):
                            await self._on_result(client, message)
                        elif str(message.topic).endswith("/status"):
                            await self._on_status(client, message)
                        else:
                            await self._on_command(client, message)
                except asyncio.CancelledError:
                    await client.publish(self.status_topic, b'{"online": false}', qos=1, retain=True)
                    raise
            finally:
                self._connected.clear()
                self._client = None

    async def _on_command(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Accept one command (or answer why not), then acknowledge it to the broker."""
        topic = str(message.topic)
        parts = topic.split("/")
        device = parts[-2] if len(parts) >= 4 else ""
        properties = message.properties
        correlation = getattr(properties, "CorrelationData", None) if properties is not None else None
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        answer_to = f"{self._namespace}/devices/{device}/replies"
        try:
            if not DEVICE_ID.match(device):
                raise Rejected(400, "device id must be letters, digits and _.:- (at most 128)")
            requested = getattr(properties, "ResponseTopic", None) if properties is not None else None
            answer_to = reply_topic(self._namespace, device, requested)
            command = parse_command(payload, self._max_bytes, self._max_chars)
            await self._accept(device, command, answer_to, correlation)
        except Rejected as exc:
            await self._record_rejection(exc.status, "PUBLISH", f"/v1/channels/{CHANNEL}/{topic}"[:200], exc.detail)
            if DEVICE_ID.match(device):
                error = {"error": exc.detail, "status": exc.status}
                await self._send(answer_to, error, correlation)
        client._client.ack(message.mid, message.qos)

    async def _on_result(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Put a device's command result on Kafka (or record why not), then acknowledge it."""

        def event(device: str, payload: bytes) -> m.DeviceCommandResult:
            result = parse_result(payload, self._max_bytes)
            return m.DeviceCommandResult(
                command_id=result.command_id, device_id=device, ok=result.ok, error=result.error, state=result.state
            )

        await self._forward(client, message, -3, "device command result", event)

    async def _on_status(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Put a device's status on Kafka as a DeviceState (or record why not), then acknowledge it."""

        def event(device: str, payload: bytes) -> m.DeviceState | None:
            status = parse_status(payload, self._max_bytes)
            if status is None:  # a retained status being cleared: nothing to say
                return None
            readings, online = status
            state = m.DeviceState(device_id=device, state=readings, online=online)
            state.observed_at.FromDatetime(datetime.now(UTC))
            return state

        await self._forward(client, message, -2, "device status", event)

    async def _forward(
        self,
        client: aiomqtt.Client,
        message: aiomqtt.Message,
        level: int,
        what: str,
        event: Callable[[str, bytes], m.DeviceCommandResult | m.DeviceState | None],
    ) -> None:
        """Put what a device published (its id at topic level ``level``, from the end) on Kafka
        as ``event`` makes it, or record why not; then acknowledge it to the broker."""
        topic = str(message.topic)
        parts = topic.split("/")
        device = parts[level] if len(parts) >= 2 - level else ""
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        try:
            if not DEVICE_ID.match(device):
                raise Rejected(400, "device id must be letters, digits and _.:- (at most 128)")
            made = event(device, payload)
            if made is not None:
                await self._publish_result(made)  # on Kafka, or raises (no PUBACK: the broker redelivers)
        except Rejected as exc:
            logger.warning(f"{what} refused", extra={"device": device, "reason": exc.detail})
            await self._record_rejection(exc.status, "PUBLISH", f"/v1/channels/{CHANNEL}/{topic}"[:200], exc.detail)
        client._client.ack(message.mid, message.qos)

    async def _accept(self, device: str, command: CommandIn, answer_to: str, correlation: bytes | None) -> None:
        keys = [f"{device}:{command.id}"] if command.id else []  # without an id, no dedupe
        if await self._deliveries.seen(CHANNEL, keys):
            return
        user = f"{CHANNEL}:{device}"
        message_id = message_id_for(device, command.id) if command.id else str(uuid.uuid4())
        target: dict[str, Any] = {"topic": answer_to}
        if correlation is not None:
            target["correlation"] = base64.b64encode(correlation).decode()
        inbound = m.InboundMessage(
            message_id=message_id,
            channel=m.CHANNEL_MQTT,
            channel_message_id=command.id or message_id,
            channel_chat_id=device,
            sender=m.Actor(user_id=user, channel_user_id=device),
            kind=m.MESSAGE_KIND_COMMAND,
            text=command.text,
        )
        # On Kafka, or raises (no PUBACK: the broker redelivers).
        if (wait_s := await self._deliveries.publish(CHANNEL, keys, inbound, user, target)) is not None:
            raise Rejected(429, f"more commands than allowed per minute; try again in {wait_s:.0f} s")

    async def _send(self, topic: str, body: dict[str, Any], correlation: bytes | None) -> None:
        """Publish ``body`` (JSON) at QoS 1, with ``correlation`` data when the asker gave some."""
        client = await self._ready_client()
        properties = None
        if correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation
        await client.publish(topic, json.dumps(body, ensure_ascii=False).encode(), qos=1, properties=properties)

    async def _ready_client(self, timeout_s: float = 30) -> aiomqtt.Client:
        async with asyncio.timeout(timeout_s):
            while (client := self._client) is None or not self._connected.is_set():
                await self._connected.wait()
        return client

    async def deliver(self, event: ConsumedEvent) -> None:
        """Answers to devices (final replies only: devices want the whole answer) and
        DeviceCommands for them; everything else on these topics is not ours."""
        payload = events.unwrap(event.envelope)
        if isinstance(payload, m.DeviceCommand):
            await self._control(payload)
            return
        if not isinstance(payload, m.OutboundMessage) or payload.channel != m.CHANNEL_MQTT or not payload.final:
            return
        target = await self._targets.get(payload.in_reply_to)
        if target is None:
            logger.warning("no mqtt topic to answer on; reply dropped", extra={"in_reply_to": payload.in_reply_to})
            return
        correlation = base64.b64decode(target["correlation"]) if "correlation" in target else None
        body = {"in_reply_to": payload.in_reply_to, "text": payload.text, **dict(payload.metadata)}
        await self._send(target["topic"], body, correlation)

    async def _control(self, command: m.DeviceCommand) -> None:
        if not DEVICE_ID.match(command.device_id):
            raise ValueError(f"device id {command.device_id!r} cannot be an MQTT topic level")  # -> dead letter
        if command.HasField("expires_at") and command.expires_at.ToDatetime(UTC) < datetime.now(UTC):
            logger.warning("device command expired before it could be sent", extra={"command_id": command.command_id})
            return
        body: dict[str, Any] = {
            "command_id": command.command_id,
            "action": command.action,
            "room": command.room,
            "value": command.value,
            "params": dict(command.params),
            "in_reply_to": command.in_reply_to,
        }
        if command.HasField("expires_at"):
            body["expires_at"] = command.expires_at.ToJsonString()
        await self._send(f"{self._namespace}/devices/{command.device_id}/control", body, None)
