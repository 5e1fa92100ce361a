"""Named time zones in a message: "5pm CET", "9am Tokyo time", "北京时间下午三点", "17:00 UTC+8".

A clock time said with a zone is that zone's wall-clock time: the expression is resolved in
the named zone (its "today", its 17:00) and the instant is then written in the user's zone.
An abbreviation stands for the place that uses it, with that place's summer time ("EST" in
July is New York's 17:00, EDT), which is what people mean when they write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

_ABBREVIATIONS = {
    "UTC": "UTC",
    "GMT": "UTC",
    "Z": "UTC",
    "BST": "Europe/London",
    "WET": "Europe/Lisbon",
    "WEST": "Europe/Lisbon",
    "CET": "Europe/Paris",
    "CEST": "Europe/Paris",
    "EET": "Europe/Athens",
    "EEST": "Europe/Athens",
    "MSK": "Europe/Moscow",
    "IST": "Asia/Kolkata",
    "SGT": "Asia/Singapore",
    "HKT": "Asia/Hong_Kong",
    "JST": "Asia/Tokyo",
    "KST": "Asia/Seoul",
    "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
    "NZST": "Pacific/Auckland",
    "NZDT": "Pacific/Auckland",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "ET": "America/New_York",
    "CDT": "America/Chicago",
    "CT": "America/Chicago",
    "MST": "America/Denver",
    "MDT": "America/Denver",
    "MT": "America/Denver",
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "PT": "America/Los_Angeles",
    "AKST": "America/Anchorage",
    "HST": "Pacific/Honolulu",
}
# Abbreviations that are also words or units count only in capitals.
_UPPER_ONLY = frozenset({"Z", "ET", "CT", "MT", "PT", "WET", "WEST"})
# "CST" is China's to a user in China and the US Central zone's to everyone else.
_CHINA = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi", "Asia/Taipei", "Asia/Macau"})
_PLACES = {
    "beijing": "Asia/Shanghai",
    "china": "Asia/Shanghai",
    "shanghai": "Asia/Shanghai",
    "hong kong": "Asia/Hong_Kong",
    "taipei": "Asia/Taipei",
    "singapore": "Asia/Singapore",
    "tokyo": "Asia/Tokyo",
    "japan": "Asia/Tokyo",
    "seoul": "Asia/Seoul",
    "india": "Asia/Kolkata",
    "sydney": "Australia/Sydney",
    "london": "Europe/London",
    "uk": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "central european": "Europe/Paris",
    "moscow": "Europe/Moscow",
    "new york": "America/New_York",
    "eastern": "America/New_York",
    "central": "America/Chicago",
    "chicago": "America/Chicago",
    "mountain": "America/Denver",
    "pacific": "America/Los_Angeles",
    "los angeles": "America/Los_Angeles",
    "la": "America/Los_Angeles",
}
_ZH_PLACES = {
    "北京": "Asia/Shanghai",
    "中国": "Asia/Shanghai",
    "上海": "Asia/Shanghai",
    "香港": "Asia/Hong_Kong",
    "台北": "Asia/Taipei",
    "新加坡": "Asia/Singapore",
    "东京": "Asia/Tokyo",
    "日本": "Asia/Tokyo",
    "首尔": "Asia/Seoul",
    "韩国": "Asia/Seoul",
    "悉尼": "Australia/Sydney",
    "伦敦": "Europe/London",
    "英国": "Europe/London",
    "巴黎": "Europe/Paris",
    "柏林": "Europe/Berlin",
    "莫斯科": "Europe/Moscow",
    "纽约": "America/New_York",
    "美东": "America/New_York",
    "美国东部": "America/New_York",
    "芝加哥": "America/Chicago",
    "美中": "America/Chicago",
    "洛杉矶": "America/Los_Angeles",
    "美西": "America/Los_Angeles",
    "美国西部": "America/Los_Angeles",
    "格林尼治": "UTC",
    "格林威治": "UTC",
    "世界标准": "UTC",
    "协调世界": "UTC",
}
# An abbreviation or an offset counts only right after a clock time ("5pm CET", "17:00 (UTC+8)"),
# so that "call the CET office" or "the ET phone" is no zone.
_ABBREVIATION = re.compile(
    r"(?:\d|(?<![a-z])[ap]\.?m\.?|\bnoon|\bmidnight|o'?clock|[点點时分半刻])\s*\(?\s*"
    rf"(?P<abbr>{'|'.join(sorted([*_ABBREVIATIONS, 'CST'], key=len, reverse=True))})"
    r"(?:\s*(?P<sign>[+-])\s*(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?)?\b\)?",
    re.I,
)
_PLACE = re.compile(rf"\b(?P<place>{'|'.join(sorted(_PLACES, key=len, reverse=True))})\s+(?:standard\s+)?time\b", re.I)
_ZH_PLACE = re.compile(rf"(?P<place>{'|'.join(sorted(_ZH_PLACES, key=len, reverse=True))})(?:标准)?时间")


@dataclass(frozen=True)
class NamedZone:
    """A zone said in the message and where it was said."""

    zone: tzinfo
    span: tuple[int, int]


def find_zone(text: str, user_zone: str) -> NamedZone | None:
    """The time zone ``text`` names for its clock time, or None when it names none."""
    place = _ZH_PLACE.search(text) or _PLACE.search(text)
    if place is not None:
        names = _ZH_PLACES if place["place"] in _ZH_PLACES else _PLACES
        return NamedZone(ZoneInfo(names[place["place"].lower()]), place.span())
    for found in _ABBREVIATION.finditer(text):
        zone = _zone(found, user_zone)
        if zone is not None:
            return NamedZone(zone, (found.start("abbr"), found.end()))
    return None


def _zone(found: re.Match[str], user_zone: str) -> tzinfo | None:
    abbr = found["abbr"].upper()
    if abbr in _UPPER_ONLY and not found["abbr"].isupper():
        return None  # "at 5 pt", "at 2 wet the plants": a word unless written as a zone
    if found["sign"]:
        if abbr not in ("UTC", "GMT"):
            return None
        hours, minutes = int(found["h"]), int(found["m"] or 0)
        if hours > 14 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(offset if found["sign"] == "+" else -offset)
    if abbr == "CST":
        return ZoneInfo("Asia/Shanghai" if user_zone in _CHINA else "America/Chicago")
    return ZoneInfo(_ABBREVIATIONS[abbr])
