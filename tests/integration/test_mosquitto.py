import asyncio

import aiomqtt
import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.integration


def _client(stack: Stack, user: str, password: str, client_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        stack.mqtt_host,
        stack.mqtt_port,
        username=user,
        password=password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=10,
    )


async def _first_message(client: aiomqtt.Client, timeout: float = 10) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            return message
    raise AssertionError("no message")


async def test_device_command_reaches_the_gateway(stack: Stack, unique: str) -> None:
    device = stack.mqtt_device_user
    topic = f"switchboard/devices/{device}/commands"
    async with (
        _client(stack, stack.mqtt_gateway_user, stack.mqtt_gateway_password, f"gw-{unique}") as gateway,
        _client(stack, device, stack.mqtt_device_password, f"dev-{unique}") as device_client,
    ):
        await gateway.subscribe(topic, qos=1)
        await device_client.publish(topic, payload=f"turn on {unique}".encode(), qos=1)
        message = await _first_message(gateway)
        assert message.topic.matches(topic)
        assert message.payload == f"turn on {unique}".encode()


async def test_wrong_password_is_rejected(stack: Stack, unique: str) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user name or password"):
        async with _client(stack, stack.mqtt_gateway_user, "wrong-password", f"bad-{unique}"):
            pass


async def test_anonymous_is_rejected(stack: Stack, unique: str) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(stack.mqtt_host, stack.mqtt_port, identifier=f"anon-{unique}", timeout=10):
            pass


async def test_acl_keeps_devices_out_of_other_devices_topics(stack: Stack, unique: str) -> None:
    # The device may publish only under its own id; the broker drops anything else.
    foreign = f"switchboard/devices/someone-else-{unique}/commands"
    own = f"switchboard/devices/{stack.mqtt_device_user}/commands"
    async with (
        _client(stack, stack.mqtt_gateway_user, stack.mqtt_gateway_password, f"gw-{unique}") as gateway,
        _client(stack, stack.mqtt_device_user, stack.mqtt_device_password, f"dev-{unique}") as device_client,
    ):
        await gateway.subscribe("switchboard/devices/+/commands", qos=1)
        await device_client.publish(foreign, payload=b"forged", qos=1)
        await device_client.publish(own, payload=b"genuine", qos=1)
        message = await _first_message(gateway)
        assert message.payload == b"genuine"
