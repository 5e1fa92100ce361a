"""Numbers said in words: Chinese numerals (and plain digits) as numbers ("两" 2, "十二" 12,
"二十五" 25, "一百" 100), and the English number words time expressions use."""

from __future__ import annotations

_DIGITS = {
    "零": 0,
    "\u3007": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}

_EN_ONES = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
# "one" .. "twenty", and the tens and halves that time expressions use ("thirty minutes",
# "forty-five", "ninety days"), each with its hyphen and without.
EN_WORDS: dict[str, int] = {
    **{word: n for n, word in enumerate(_EN_ONES, 1)},
    **{f"twenty{sep}five": 25 for sep in ("-", " ")},
    **{f"forty{sep}five": 45 for sep in ("-", " ")},
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "ninety": 90,
}


def to_number(text: str | None) -> float | None:
    """``text`` as a number, or None when it is not one."""
    if not text:
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return int(value) if value.is_integer() else value
    total, section, digit = 0, 0, None
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char] if digit is None else digit * 10 + _DIGITS[char]
        elif char in _UNITS:
            unit = _UNITS[char]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
        else:
            return None
    return total + section + (digit or 0)
