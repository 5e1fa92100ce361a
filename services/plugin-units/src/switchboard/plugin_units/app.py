"""The unit converter as a plugin: its registration, and its answer to each request."""

from __future__ import annotations

import asyncio
import logging
from importlib import metadata

from switchboard.common import plugins
from switchboard.events.v1 import messages_pb2 as m
from switchboard.plugin_units.config import Settings
from switchboard.plugin_units.convert import ConversionError, convert, find

logger = logging.getLogger(__name__)

INTENT = "units.convert"
TEXTS = {
    "en": {
        "unclear": "I can convert units: try “convert 5 miles to km” or “100 °F in °C”.",
        "unknown_unit": "I don't know the unit “{unit}”.",
        "incompatible": "I can't convert {source} to {target}: they don't measure the same thing.",
    },
    "zh": {
        "unclear": "我可以换算单位，比如“5公里是多少英里”或“100华氏度是多少摄氏度”。",
        "unknown_unit": "我不认识单位“{unit}”。",
        "incompatible": "{source}和{target}不是同一种量，无法换算。",
    },
}


def registration(settings: Settings) -> m.PluginRegistration:
    return m.PluginRegistration(
        name=settings.plugin_name,
        version=metadata.version("switchboard-plugin-units"),
        title={"en": "the unit converter", "zh": "单位换算"},
        description="Converts amounts between units of length, mass, temperature, volume, area, speed and time.",
        intents=[INTENT],
        request_topic=settings.request_topic,
        reply_topic=settings.topics.plugin_replies,
        timeout_s=settings.timeout_s,
    )


def answer(request: m.PluginRequest) -> m.PluginReply:
    """The conversion the request's message asks for, or what is wrong with it."""
    texts = TEXTS["zh" if request.intent.language == "zh" else "en"]
    asked = find(request.intent.message.text)
    if asked is None:
        return m.PluginReply(ok=False, text=texts["unclear"], error="no conversion found in the message")
    try:
        done = convert(asked)
    except ConversionError as exc:
        return m.PluginReply(ok=False, text=texts[exc.reason].format(**exc.values), error=exc.reason)
    return m.PluginReply(
        ok=True, text=done.text(), data={"value": repr(done.value), "unit": done.unit, "amount": repr(asked.amount)}
    )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    await plugins.serve(settings, registration(settings), answer, stop)
