"""Classification of one inbound message (no I/O). A minimal rule set for now; the full
parser (filters, limits, context, slots) replaces it."""

from __future__ import annotations

import re

from switchboard.events.v1 import messages_pb2 as m

# (intent, pattern) in order of precedence; the first match wins.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(r"^\s*(/help|help\b|帮助)", re.IGNORECASE)),
    ("reminder.create", re.compile(r"\bremind me\b|提醒我", re.IGNORECASE)),
    ("device.control", re.compile(r"\bturn (on|off)\b|打开|关闭|调到", re.IGNORECASE)),
]
_PROFILES: list[tuple[str, re.Pattern[str]]] = [
    ("code", re.compile(r"```|\b(python|javascript|function|code|bug|stack trace)\b|代码", re.IGNORECASE)),
    ("creative", re.compile(r"\b(poem|story|lyrics)\b|写诗|故事", re.IGNORECASE)),
]
_URGENT = re.compile(r"\b(urgent|asap|emergency)\b|紧急", re.IGNORECASE)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def parse(message: m.InboundMessage) -> m.ParsedIntent:
    """Intent, model profile and priority of ``message``, with the reasons recorded."""
    text = message.text
    intent = next((name for name, pattern in _RULES if pattern.search(text)), "chat")
    profile = next((name for name, pattern in _PROFILES if pattern.search(text)), "general")
    urgent = bool(_URGENT.search(text)) or message.metadata.get("priority") == "urgent"
    priority = m.PRIORITY_URGENT if urgent else m.PRIORITY_ROUTINE
    return m.ParsedIntent(
        message=message,
        intent=intent,
        confidence=1.0 if intent != "chat" else 0.5,
        model_profile=profile,
        priority=priority,
        routing_reason=f"profile={profile} by keywords; priority={'urgent' if urgent else 'routine'}",
        language="zh" if _CJK.search(text) else "en",
        time_zone=message.sender.time_zone,
    )
