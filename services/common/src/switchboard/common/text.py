"""Control characters in user text.

NUL and the other C0 control characters (all but tab, line feed and carriage return) and
DEL have no place in a chat message or a device command: PostgreSQL refuses NUL in text
and jsonb, terminals and logs misrender the rest. The gateway refuses such text at intake
on every channel (HTTP 422, an error answer, an audit record), naming what it found.
"""

from __future__ import annotations

import re

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_characters(text: str) -> list[str]:
    """The distinct control characters in ``text`` as code points ("U+0000"), in order."""
    return sorted({f"U+{ord(c):04X}" for c in CONTROL.findall(text)})


def refusal(text: str) -> str | None:
    """Why ``text`` is refused for its control characters, or None when it has none."""
    found = control_characters(text)
    if not found:
        return None
    return f"text contains control characters ({', '.join(found[:5])}); only tab and line breaks are allowed"
