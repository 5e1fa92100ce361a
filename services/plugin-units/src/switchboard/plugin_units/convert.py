"""Finding "5 miles to km" (or "100华氏度是多少摄氏度") in a message, and converting it with pint.

:func:`find` reads the amount and the two units as the user wrote them; :func:`convert` turns
them into a :class:`Conversion` or raises :class:`ConversionError` with what to tell the user.
pint knows the units and their English names; Chinese names and a few everyday spellings pint
reads otherwise ("F" is a farad to pint) are mapped first (``ALIASES``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pint

UNITS = pint.UnitRegistry()
UNITS.define("jin = 0.5 * kilogram")  # 斤
UNITS.define("mu = 10000 / 15 * meter ** 2")  # 亩

# Names pint does not read as people mean them -> pint's expression.
ALIASES = {
    "f": "degF",
    "c": "degC",
    "°f": "degF",
    "°c": "degC",
    "k": "kelvin",
    "kmh": "km/h",
    "kmph": "km/h",
    "lbs": "lb",
    "cc": "mL",
    "公里": "km",
    "千米": "km",
    "公尺": "m",
    "米": "m",
    "厘米": "cm",
    "公分": "cm",
    "毫米": "mm",
    "英里": "mile",
    "海里": "nautical_mile",
    "英尺": "foot",
    "英呎": "foot",
    "呎": "foot",
    "英寸": "inch",
    "吋": "inch",
    "码": "yard",
    "碼": "yard",
    "公斤": "kg",
    "千克": "kg",
    "克": "g",
    "斤": "jin",
    "磅": "lb",
    "盎司": "oz",
    "吨": "metric_ton",
    "噸": "metric_ton",
    "华氏度": "degF",
    "華氏度": "degF",
    "华氏": "degF",
    "華氏": "degF",
    "摄氏度": "degC",
    "攝氏度": "degC",
    "摄氏": "degC",
    "攝氏": "degC",
    "开尔文": "kelvin",
    "升": "L",
    "公升": "L",
    "毫升": "mL",
    "加仑": "gallon",
    "加侖": "gallon",
    "平方米": "m**2",
    "平方公尺": "m**2",
    "平方公里": "km**2",
    "平方千米": "km**2",
    "亩": "mu",
    "畝": "mu",
    "公顷": "hectare",
    "公頃": "hectare",
    "英亩": "acre",
    "英畝": "acre",
    "小时": "hour",
    "小時": "hour",
    "分钟": "minute",
    "分鐘": "minute",
    "秒": "second",
    "天": "day",
    "公里每小时": "km/h",
    "公里/小时": "km/h",
    "千米每小时": "km/h",
    "英里每小时": "mph",
}

# Chinese unit names, longest first ("平方公里" before "公里", "英里" before "里").
_ZH_UNIT = "|".join(sorted((re.escape(n) for n in ALIASES if not n.isascii()), key=len, reverse=True))
# An English unit: one word, or "square / cubic" and a word, "degrees Fahrenheit", "km/h", "°F".
_EN_UNIT = r"(?:(?:sq|square|cubic|cu)\.? )?(?:degrees? )?°?[a-zµ][a-zµ²³]*(?:/[a-z]+)?(?: per [a-z]+)?"
_NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+"

PATTERNS = [
    # convert 5 miles to km / what is 100 °F in celsius / 3.5 lbs into kg
    re.compile(rf"(?P<amount>{_NUMBER}) ?(?P<src>{_EN_UNIT}) (?:to|in|into|as|in to) (?P<dst>{_EN_UNIT})\b"),
    # how many km is 5 miles / how many ounces are there in 2 pounds
    re.compile(
        rf"how (?:many|much) (?P<dst>{_EN_UNIT}) (?:(?:is|are|in|make|equals?|=)(?: there)?(?: in)? )+"
        rf"(?P<amount>{_NUMBER}) ?(?P<src>{_EN_UNIT})\b"
    ),
    # 100华氏度是多少摄氏度 / 5公里等于多少英里 / 3磅是几公斤 / 5 miles是多少公里
    re.compile(
        rf"(?P<amount>{_NUMBER}) ?(?P<src>{_ZH_UNIT}|{_EN_UNIT}) ?"
        rf"(?:是|等于|等於|合|换算成|換算成|折合|相当于|相當於|有)? ?(?:多少|几|幾) ?(?P<dst>{_ZH_UNIT}|{_EN_UNIT})"
    ),
    # 把3磅换算成公斤 / 5英尺转成米
    re.compile(
        rf"(?P<amount>{_NUMBER}) ?(?P<src>{_ZH_UNIT}|{_EN_UNIT}) ?"
        rf"(?:换算成|換算成|转换成|轉換成|转成|轉成|换成|換成|换算为|換算為|转换为|轉換為|等于|等於|折合) ?"
        rf"(?P<dst>{_ZH_UNIT}|{_EN_UNIT})"
    ),
]


class ConversionError(ValueError):
    """The message asks for a conversion that cannot be made; ``reason`` names what is wrong."""

    def __init__(self, reason: str, **values: str) -> None:
        super().__init__(reason, values)
        self.reason = reason
        self.values = values


@dataclass(frozen=True, slots=True)
class Request:
    """A conversion as the user wrote it."""

    amount: float
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class Conversion:
    request: Request
    value: float
    unit: str  # pint's name of the target unit

    def text(self) -> str:
        """ "5 miles = 8.05 km", in the user's words for the units."""
        r = self.request
        return f"{number(r.amount)} {_shown(r.source)} = {number(self.value)} {_shown(r.target)}"


def normalise(text: str) -> str:
    """NFKC (full width to ASCII), lower case, one space between words."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def find(text: str) -> Request | None:
    """The conversion ``text`` asks for, if it asks for one."""
    cleaned = normalise(text)
    for pattern in PATTERNS:
        match = pattern.search(cleaned)
        if match:
            amount = float(match["amount"].replace(",", ""))
            return Request(amount, match["src"].strip(), match["dst"].strip().rstrip("?.!"))
    return None


def unit_of(name: str) -> pint.Unit:
    """pint's unit for what the user wrote ("miles", "°F", "公里", "degrees celsius")."""
    words = re.sub(r"^degrees? ", "", name.strip())
    words = re.sub(r"^(sq|square)\.? (\S+)$", r"\2**2", words)
    words = re.sub(r"^(cu|cubic)\.? (\S+)$", r"\2**3", words)
    expression = ALIASES.get(words, words)
    try:
        return UNITS.parse_units(expression)
    except (pint.UndefinedUnitError, AssertionError, ValueError, TypeError, AttributeError) as exc:
        raise ConversionError("unknown_unit", unit=name) from exc


def convert(request: Request) -> Conversion:
    source, target = unit_of(request.source), unit_of(request.target)
    try:
        value = UNITS.Quantity(request.amount, source).to(target).magnitude
    except pint.DimensionalityError as exc:
        raise ConversionError("incompatible", source=request.source, target=request.target) from exc
    return Conversion(request, float(value), str(target))


def _shown(unit: str) -> str:
    """A unit as written, but "°C" / "°F" for the bare letters (normalising lower-cased them)."""
    return {"c": "°C", "°c": "°C", "f": "°F", "°f": "°F"}.get(unit, unit)


def number(value: float) -> str:
    """A figure as people write it: 8.05, 1,609.34, 0.0254, 5 (two decimals, or three
    significant digits below 1)."""
    if value == 0:
        return "0"
    if abs(value) < 1:
        return f"{value:.3g}"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
