"""Control characters in user text, and which characters are Chinese (CJK).

NUL and the other C0 control characters (all but tab, line feed and carriage return) and
DEL have no place in a chat message or a device command: PostgreSQL refuses NUL in text
and jsonb, terminals and logs misrender the rest. The gateway refuses such text at intake
on every channel (HTTP 422, an error answer, an audit record), naming what it found; the
scheduler, which writes events into PostgreSQL, scrubs NUL from every payload whatever its
source (a record produced by something other than the gateway).
"""

from __future__ import annotations

import re

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# CJK unified ideographs (extension A and the basic block) and the compatibility ideographs:
# the ranges, for a character class of one's own, and a pattern matching one such character.
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{CJK_RANGES}]")


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Chinese (CJK ideograph) character."""
    return CJK.search(text) is not None


def control_characters(text: str) -> list[str]:
    """The distinct control characters in ``text`` as code points ("U+0000"), in order."""
    return sorted({f"U+{ord(c):04X}" for c in CONTROL.findall(text)})


def refusal(text: str) -> str | None:
    """Why ``text`` is refused for its control characters, or None when it has none."""
    found = control_characters(text)
    if not found:
        return None
    return f"text contains control characters ({', '.join(found[:5])}); only tab and line breaks are allowed"


def without_nul(text: str) -> str:
    """``text`` without NUL, which PostgreSQL cannot store in text or jsonb."""
    return text.replace("\x00", "")


def scrub(message: Message) -> Message:
    """``message`` (changed in place, and returned) with NUL removed from every string in
    it, nested messages, repeated fields and map values included: what a service that
    writes events into PostgreSQL applies to each payload, whatever channel it came from."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                value[:] = [without_nul(item) for item in value]
            else:
                setattr(message, field.name, without_nul(value))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                entries = dict(value)
                value.clear()
                for key, item in entries.items():
                    clean_key = without_nul(key) if isinstance(key, str) else key
                    if isinstance(item, str):
                        value[clean_key] = without_nul(item)
                    else:
                        value[clean_key].CopyFrom(scrub(item))
            elif field.is_repeated:
                for item in value:
                    scrub(item)
            else:
                scrub(value)
    return message
