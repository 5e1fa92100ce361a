"""24-hour clock times the library reads as 12-hour ones, rewritten for ``time_text``.

A leading zero ("03:00", "0:10") or an "h" / "hours" after four digits ("0600h", "1300 hours")
says the clock has 24 hours: "03:00" is three in the morning, not the afternoon's 3:00 that a
bare "at 3" is by the product's convention. Each is rewritten with its am/pm said.
"""

from __future__ import annotations

import re

# "03:00", "00:10", "0:10", "06:00 hours", "06:00h" (not "03:00 pm", a date "03.04.2027" or "10:03:00").
ZERO_LED = re.compile(
    r"(?<![\w:.,/+-])0?0(?P<h>\d)?:(?P<m>[0-5]\d)(?:\s*(?:h|hrs|hours)\b)?(?![:.]?\d)(?!\s*[ap]\.?m\b)",
    re.I,
)
# "0600h", "1300 hours", "0700 hrs": military style.
HOURS_SUFFIX = re.compile(r"(?<![\w:.,/-])(?P<h>[01]\d|2[0-3])(?P<m>[0-5]\d)\s*(?:h|hrs|hours)\b", re.I)


def twelve_hour(hour: int, minute: int) -> str:
    """``hour``:``minute`` of a 24-hour clock, as the library reads it without doubt."""
    suffix = "am" if hour < 12 else "pm"
    return f"{(hour - 1) % 12 + 1}:{minute:02d}{suffix}"


def zero_led(found: re.Match[str]) -> str:
    return twelve_hour(int(found["h"] or 0), int(found["m"]))


def hours_suffix(found: re.Match[str]) -> str:
    return twelve_hour(int(found["h"]), int(found["m"]))
