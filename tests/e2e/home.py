"""A home for the pipeline tests: the gateway's MQTT settings, a device registry with one
light, a device client, and a light that does what it is told.

The device is the stack's device account (its Mosquitto ACL lets it publish commands and
results and read its control topic); every topic is under the run's own namespace, so
other gateways on the same broker (``make up``) never see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import aiomqtt
import yaml

from switchboard.common.tls import client_context
from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline

LIGHT = "bedroom light"


def mqtt_env(pipeline: Pipeline) -> dict[str, str]:
    """The gateway settings that make it speak MQTT under the run's namespace (each replica
    gets its own client id from the pipeline, as a StatefulSet's pods do)."""
    stack = pipeline.stack
    return {
        "MQTT_HOST": stack.mqtt_host,
        "MQTT_PORT": str(stack.mqtt_tls_port if pipeline.tls else stack.mqtt_port),
        "MQTT_TLS": str(pipeline.tls).lower(),
        "MQTT_CA_FILE": stack.tls_ca_file,
        "MQTT_USERNAME": stack.mqtt_gateway_user,
        "MQTT_PASSWORD": stack.mqtt_gateway_password,
        "MQTT_NAMESPACE": pipeline.namespace,
        "MQTT_SHARE_GROUP": f"e2e{pipeline.run_id}",
        "MQTT_GROUP_ID": f"e2e-{pipeline.run_id}-mqtt",
    }


def registry(stack: Stack, path: Path) -> Path:
    """Write a device registry with one device, the stack's device account: the bedroom light."""
    devices = [{"id": stack.mqtt_device_user, "kind": "light", "room": "bedroom", "name": {"en": LIGHT}}]
    path.write_text(yaml.safe_dump({"devices": devices}))
    return path


def device(
    stack: Stack, name: str, protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5, tls: bool = False
) -> aiomqtt.Client:
    """An MQTT client logged in as the stack's device account (``tls``: on the TLS port,
    trusting the stack's CA)."""
    return aiomqtt.Client(
        stack.mqtt_host,
        stack.mqtt_tls_port if tls else stack.mqtt_port,
        tls_context=client_context(Path(stack.tls_ca_file)) if tls else None,
        username=stack.mqtt_device_user,
        password=stack.mqtt_device_password,
        identifier=name,
        protocol=protocol,
        timeout=10,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


def control_topic(pipeline: Pipeline) -> str:
    return f"{pipeline.namespace}/devices/{pipeline.stack.mqtt_device_user}/control"


class Light:
    """The registered light, obeying: every order on its control topic is done and answered
    (``ok`` with the new power state), a repeated order as often as it comes."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.orders = 0

    async def __aenter__(self) -> Light:
        self._client = device(self._pipeline.stack, f"light-{self._pipeline.run_id}", tls=self._pipeline.tls)
        await self._client.__aenter__()
        await self._client.subscribe(control_topic(self._pipeline), qos=1)
        self._task = asyncio.create_task(self._obey())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.__aexit__(None, None, None)

    async def _obey(self) -> None:
        control = control_topic(self._pipeline)
        async for message in self._client.messages:
            order = json.loads(message.payload)
            self.orders += 1
            result = {"command_id": order["command_id"], "ok": True, "state": {"power": order["action"]}}
            await self._client.publish(f"{control}/result", json.dumps(result).encode(), qos=1)
