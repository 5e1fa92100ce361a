"""MQTT devices through the whole pipeline: real Mosquitto (with its ACL), the real stack,
the five services. The device is the stack's device account; topics are under the run's
own namespace, so other gateways on the same broker (``make up``) never see them."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from switchboard.common import events
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack
from tests.e2e import home
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _conversation, _read_all, _started
from tests.e2e.test_reminders import _say

pytestmark = pytest.mark.integration


async def pipeline_with_mqtt(stack: Stack) -> AsyncIterator[Pipeline]:
    """A pipeline (not started) whose gateway speaks MQTT under the run's own namespace."""
    pipeline = Pipeline(stack)
    # No rate limit: the malformed flood is not what is measured here.
    pipeline.extra_env = {"channel_gateway": {**home.mqtt_env(pipeline), "RATE_LIMIT_PER_MINUTE": "0"}}
    yield pipeline


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    async for unstarted in pipeline_with_mqtt(stack):
        async for started in _started(unstarted):
            yield started


@pytest.fixture
async def light(stack: Stack, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """The MQTT pipeline with one registered device, the stack's device account: the
    bedroom light; it must answer a command within 3 s, and gets 2 tries."""
    async for pipeline in pipeline_with_mqtt(stack):
        pipeline.extra_env["scheduler"] = {
            "DEVICES_FILE": str(home.registry(stack, tmp_path / "devices.yaml")),
            "DEVICE_ANSWER_S": "3",
            "DEVICE_ATTEMPTS": "2",
            "RETRY_BASE_S": "0.5",
            "RETRY_CAP_S": "1",
        }
        async for started in _started(pipeline):
            yield started


def _topics(pipeline: Pipeline) -> tuple[str, str]:
    base = f"{pipeline.namespace}/devices/{pipeline.stack.mqtt_device_user}"
    return f"{base}/commands", f"{base}/replies"


async def _next(device: aiomqtt.Client, timeout: float = 60) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        async for message in device.messages:
            return message
    raise AssertionError("no message")


def _asking(response_topic: str, correlation: bytes) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)
    properties.ResponseTopic = response_topic
    properties.CorrelationData = correlation
    return properties


async def test_mqtt5_and_311_devices_get_answers_where_they_asked(pipeline: Pipeline) -> None:
    commands, replies = _topics(pipeline)
    mine = f"{replies}/session-1"
    async with home.device(pipeline.stack, f"dev5-{pipeline.run_id}") as device:
        await device.subscribe(f"{replies}/#", qos=1)
        await device.subscribe(replies, qos=1)
        body = json.dumps({"text": "tell me a joke", "id": "cmd-1"}).encode()
        await device.publish(commands, body, qos=1, properties=_asking(mine, b"corr-1"))
        answer = await _next(device)
        assert answer.topic.value == mine and answer.qos == 1
        assert answer.properties is not None and answer.properties.CorrelationData == b"corr-1"
        assert json.loads(answer.payload)["text"] == "tell me a joke"  # the echo model

        # A response topic that is not the device's own is refused, on its own replies topic.
        foreign = f"{pipeline.namespace}/devices/someone-else/replies"
        await device.publish(commands, body, qos=1, properties=_asking(foreign, b"corr-2"))
        refused = await _next(device)
        assert refused.topic.value == replies and json.loads(refused.payload)["status"] == 403
        assert refused.properties is not None and refused.properties.CorrelationData == b"corr-2"

    async with home.device(pipeline.stack, f"dev3-{pipeline.run_id}", aiomqtt.ProtocolVersion.V311) as device:
        await device.subscribe(replies, qos=1)
        await device.publish(commands, json.dumps({"text": "status please"}).encode(), qos=1)
        answer = await _next(device)
        assert answer.topic.value == replies and json.loads(answer.payload)["text"] == "status please"


def _malformed(rng: random.Random) -> bytes:
    """Payloads a broken or hostile device could send."""
    choice = rng.randrange(9)
    if choice == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if choice == 1:
        return b"{" * rng.randrange(1, 50)
    if choice == 2:
        return json.dumps(rng.choice([[], 1, "text", None, True, {}])).encode()
    if choice == 3:
        return json.dumps({"text": rng.choice([1, None, [], {}, ""])}).encode()
    if choice == 4:
        return json.dumps({"text": "hi", "extra": rng.random()}).encode()
    if choice == 5:
        return json.dumps({"text": "hi", "id": "x" * rng.randrange(129, 300)}).encode()
    if choice == 6:
        return b'{"text": "' + b"\xff\xfe" * rng.randrange(1, 20) + b'"}'
    if choice == 7:
        return json.dumps({"text": "lights" + chr(rng.choice([0, 1, 8, 27, 127])) + "off"}).encode()
    return b"x" * rng.randrange(64 * 1024 + 1, 80 * 1024)  # over the size limit


async def test_ten_thousand_malformed_commands_get_error_answers_and_nothing_breaks(pipeline: Pipeline) -> None:
    commands, replies = _topics(pipeline)
    rng = random.Random(20261124)
    count = 10_000
    async with home.device(pipeline.stack, f"fuzz-{pipeline.run_id}") as device:
        await device.subscribe(replies, qos=1)
        for _ in range(count):
            await device.publish(commands, _malformed(rng), qos=1)
        statuses: dict[int, int] = {}
        async with asyncio.timeout(180):
            async for message in device.messages:
                status = json.loads(message.payload)["status"]
                statuses[status] = statuses.get(status, 0) + 1
                if sum(statuses.values()) == count:
                    break
        assert set(statuses) <= {400, 413, 422} and sum(statuses.values()) == count
        # The gateway is still there and still answers.
        await device.publish(commands, json.dumps({"text": "hello from the wall panel"}).encode(), qos=1)
        assert json.loads((await _next(device)).payload)["text"] == "hello from the wall panel"
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["hello from the wall panel"]


async def test_a_command_sent_while_the_gateway_is_down_is_answered_after(pipeline: Pipeline) -> None:
    commands, replies = _topics(pipeline)
    async with home.device(pipeline.stack, f"down-{pipeline.run_id}") as device:
        await device.subscribe(replies, qos=1)

        async def publish_while_down() -> None:
            await device.publish(commands, json.dumps({"text": "are you there", "id": "c-9"}).encode(), qos=1)

        # Killed, not stopped: the broker keeps its session and queues the command.
        await pipeline.restart("channel_gateway", while_down=publish_while_down, sig=signal.SIGKILL)
        answer = await _next(device, timeout=90)
        assert json.loads(answer.payload)["text"] == "are you there"
        await device.publish(commands, json.dumps({"text": "are you there", "id": "c-9"}).encode(), qos=1)
        await asyncio.sleep(3)  # a repeated id is not answered twice
    inbound = await _read_all(pipeline.stack, pipeline.topics.inbound)
    assert [e.inbound_message.text for e in inbound] == ["are you there"]


async def test_device_commands_reach_the_control_topic_and_status_is_retained(pipeline: Pipeline) -> None:
    device_id = pipeline.stack.mqtt_device_user
    control = f"{pipeline.namespace}/devices/{device_id}/control"
    status = f"{pipeline.namespace}/devices/{device_id}/status"
    async with home.device(pipeline.stack, f"ctl-{pipeline.run_id}") as device:
        await device.publish(status, b'{"online": true, "power": "off"}', qos=1, retain=True)
        await device.subscribe(control, qos=1)
        command = m.DeviceCommand(command_id="dc-1", device_id=device_id, action="turn_on", room="living room")
        expired = m.DeviceCommand(command_id="dc-old", device_id=device_id, action="turn_off")
        expired.expires_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.kafka_bootstrap)
        await producer.start()
        try:
            for item in (expired, command):
                envelope = events.wrap(item, conversation_key=device_id, source="test", tenant_id="t")
                await producer.send_and_wait(pipeline.topics.device_commands, envelope.SerializeToString(), key=b"d")
        finally:
            await producer.stop()
        received = await _next(device)
        assert received.qos == 1
        assert json.loads(received.payload) | {"params": {}} == {
            "command_id": "dc-1",
            "action": "turn_on",
            "room": "living room",
            "value": "",
            "params": {},
            "in_reply_to": "",
        }
    # Whoever subscribes later (a dashboard, the gateway) gets the device's last status and
    # the gateway's own, both retained.
    async with aiomqtt.Client(
        pipeline.stack.mqtt_host,
        pipeline.stack.mqtt_port,
        username=pipeline.stack.mqtt_gateway_user,
        password=pipeline.stack.mqtt_gateway_password,
        identifier=f"watcher-{pipeline.run_id}",
        timeout=10,
    ) as watcher:
        await watcher.subscribe(status, qos=1)
        await watcher.subscribe(f"{pipeline.namespace}/gateway/status", qos=1)
        seen = {}
        for _ in range(2):
            message = await _next(watcher)
            seen[str(message.topic)] = json.loads(message.payload)
        assert seen[status]["power"] == "off"
        assert seen[f"{pipeline.namespace}/gateway/status"] == {"online": True}
        await watcher.publish(status, b"", qos=1, retain=True)  # clear the retained status


async def test_a_device_control_intent_commands_the_device_and_its_answer_is_the_reply(light: Pipeline) -> None:
    commands, replies = _topics(light)
    control = home.control_topic(light)
    async with home.device(light.stack, f"light-{light.run_id}") as device:
        await device.subscribe(replies, qos=1)
        await device.subscribe(control, qos=1)
        # Said on the wall panel (the device account itself): the light answers the command.
        await device.publish(
            commands, json.dumps({"text": "turn off the bedroom light", "id": "say-1"}).encode(), qos=1
        )
        order = await _next(device)
        assert str(order.topic) == control
        sent = json.loads(order.payload)
        assert (sent["action"], sent["room"]) == ("off", "bedroom")
        result = {"command_id": sent["command_id"], "ok": True, "state": {"power": "off"}}
        await device.publish(f"{control}/result", json.dumps(result).encode(), qos=1)
        reply = await _next(device)
        assert str(reply.topic) == replies and json.loads(reply.payload)["text"] == "Done: bedroom light, off."

        # Now the light stays silent: the command is sent again (same id), then the user is told.
        await device.publish(commands, json.dumps({"text": "turn on the bedroom light", "id": "say-2"}).encode(), qos=1)
        orders = [json.loads((await _next(device)).payload) for _ in range(2)]
        assert orders[0]["command_id"] == orders[1]["command_id"] != sent["command_id"]
        told = await _next(device)
        assert json.loads(told.payload)["text"].startswith("The bedroom light did not answer (2 tries)")
    dead = [r for r in await _read_raw(light.stack, light.topics.deadletter)]
    assert any(orders[0]["command_id"] in r.value.decode() for r in dead)
    results = await _read_all(light.stack, light.topics.device_results)
    assert [(r.device_command_result.command_id, r.device_command_result.state["power"]) for r in results] == [
        (sent["command_id"], "off")
    ]


async def _kept(pipeline: Pipeline, device_id: str, power: str) -> None:
    """Wait until the scheduler keeps ``power`` as the device's state."""
    conn = await asyncpg.connect(pipeline.stack.pg_dsn)
    try:
        async with asyncio.timeout(60):
            while (
                await conn.fetchval(
                    f'SELECT state->>$2 FROM "{pipeline.schema}".device_states WHERE device_id = $1', device_id, "power"
                )
                != power
            ):
                await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def test_a_state_question_is_answered_from_the_devices_retained_status(light: Pipeline) -> None:
    device_id = light.stack.mqtt_device_user
    status = f"{light.namespace}/devices/{device_id}/status"
    async with home.device(light.stack, f"status-{light.run_id}") as device:
        try:
            await device.publish(status, b'{"online": true, "power": "on", "brightness": 80}', qos=1, retain=True)
            await _kept(light, device_id, "on")
            async with light.client(light.gateway_urls[0], timeout=60) as client:
                conversation = await _conversation(client)
                answer = await _say(client, conversation, "is the bedroom light on?")
                assert re.fullmatch(r"Yes, the bedroom light is on \(since \d\d:\d\d\)\.", answer), answer
                await device.publish(status, b'{"power": "off"}', qos=1, retain=True)
                await _kept(light, device_id, "off")
                answer = await _say(client, conversation, "is the bedroom light on")
                assert re.fullmatch(r"No, the bedroom light is off \(since \d\d:\d\d\)\.", answer), answer
        finally:
            await device.publish(status, b"", qos=1, retain=True)  # clear the retained status
    # Answered from the state: no inference request was made for either question.
    requests = await _read_all(light.stack, light.topics.requests_routine)
    requests += await _read_all(light.stack, light.topics.requests_urgent)
    assert not [r for r in requests if "bedroom light" in r.inference_request.messages[-1].content]


async def _read_raw(stack: Stack, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        batches = await consumer.getmany(timeout_ms=3000)
        return [r for batch in batches.values() for r in batch]
    finally:
        await consumer.stop()
