"""The labelled dataset keeps to its own conventions (data/README.md): a wrong label here
would silently lower (or raise) every figure the benchmark prints."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

DATA = Path(__file__).resolve().parents[1] / "data"


def _rows(pattern: str) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(DATA.glob(pattern))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


ROWS = _rows("utterances.*.jsonl")  # train and dev
# The held-out test split (data/TEST_SPLIT.md): checked here by rule, never read by anyone tuning.
TEST_ROWS = _rows("test.*.jsonl")
INTENTS = {
    "chat", "help", "reminder.create", "reminder.list", "reminder.cancel",
    "device.control", "device.query", "ticket.create", "units.convert",
}  # fmt: skip
KEYS = ["id", "text", "lang", "intent", "split", "tz", "slots"]
SLOTS = {"datetime", "rrule", "task", "device", "room", "action", "value", "category"}
ACTIONS = {"on", "off", "set", "up", "down", "open", "close", "lock", "unlock", "start", "stop", "query"}
CATEGORIES = {"account", "billing", "technical", "delivery", "feedback"}
RRULE_ORDER = ["FREQ", "INTERVAL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE"]
NOW = datetime(2026, 11, 24, 15, 30)  # noqa: DTZ001 (local wall-clock time of every row, zone per row)


def test_size_languages_and_splits() -> None:
    assert len(ROWS) >= 600
    assert len({row["id"] for row in ROWS}) == len(ROWS)
    languages = Counter(row["lang"] for row in ROWS)
    assert languages["en"] >= 250 and languages["zh"] >= 250 and languages["mixed"] > 0
    for intent in INTENTS:
        splits = Counter(row["split"] for row in ROWS if row["intent"] == intent)
        assert 0.2 <= splits["dev"] / (splits["dev"] + splits["train"]) <= 0.4, intent


@pytest.mark.parametrize("row", ROWS + TEST_ROWS, ids=[str(row["id"]) for row in ROWS + TEST_ROWS])
def test_row(row: dict[str, object]) -> None:
    assert list(row) == KEYS
    assert row["intent"] in INTENTS
    assert row["split"] == "test" if row in TEST_ROWS else row["split"] in ("train", "dev")
    slots: dict[str, str] = row["slots"]  # type: ignore[assignment]
    assert set(slots) <= SLOTS
    assert slots.get("action", "on") in ACTIONS
    assert slots.get("category", "account") in CATEGORIES
    assert ("category" in slots) == (row["intent"] == "ticket.create")
    zone = ZoneInfo(str(row["tz"]))
    if "datetime" in slots:
        when = datetime.fromisoformat(slots["datetime"])
        assert when.utcoffset() == when.replace(tzinfo=zone).utcoffset(), "offset is not the zone's at that time"
        assert when >= NOW.replace(tzinfo=zone), "in the past"
    if "rrule" in slots:
        parts = [part.split("=")[0] for part in slots["rrule"].split(";")]
        assert parts == sorted(parts, key=RRULE_ORDER.index), "parts out of canonical order"
        first = datetime.fromisoformat(slots["datetime"]).astimezone(zone).replace(tzinfo=None)
        rule = dict(part.split("=") for part in slots["rrule"].split(";"))
        if rule["FREQ"] in ("HOURLY", "MINUTELY"):  # "every 2 hours": from now, first in 2 h
            unit = timedelta(hours=1) if rule["FREQ"] == "HOURLY" else timedelta(minutes=1)
            assert first == NOW + int(rule.get("INTERVAL", 1)) * unit
        elif "INTERVAL" not in rule:  # with an interval, the series starts at its first time
            series = rrulestr(slots["rrule"], dtstart=NOW - timedelta(days=400))
            assert series.after(NOW - timedelta(seconds=1)) == first, "not the first occurrence"


# Numbers, in digits or Chinese numerals, read as one symbol: a dev row made by changing the
# number of a train row ("42公里是多少英里" / "10公里是多少英里") is a copy.
_NUMBER = re.compile(r"[0-9]+(?:[.:][0-9]+)?|[零一二两三四五六七八九十百千万半]+")


def _trigrams(text: str) -> set[str]:
    text = _NUMBER.sub("#", text.casefold())
    return {text[i : i + 3] for i in range(len(text) - 2)} or {text}


def _copies(
    rows: list[dict[str, object]], held_out: list[dict[str, object]], threshold: float
) -> list[tuple[object, object]]:
    kept = [(row["id"], _trigrams(str(row["text"]))) for row in held_out]
    copies = []
    for row in rows:
        grams = _trigrams(str(row["text"]))
        copies += [
            (row["id"], kept_id) for kept_id, other in kept if len(grams & other) / len(grams | other) >= threshold
        ]
    return copies


def test_no_dev_sentence_is_copied_into_train() -> None:
    """The dev split stays a held-out test: no train row is the same sentence but for its
    numbers, or nearly."""
    train = [row for row in ROWS if row["split"] == "train"]
    assert _copies(train, [row for row in ROWS if row["split"] == "dev"], 0.8) == []


def test_the_test_split_copies_no_labelled_row() -> None:
    # Stricter than for dev: the test split was written apart, so even a close paraphrase is out.
    assert len(TEST_ROWS) >= 400
    assert _copies(ROWS, TEST_ROWS, 0.6) == []


# The public corpora's training rows (scripts/import_public_train.py): training data only.
PUBLIC = _rows("public/*.jsonl")


def test_public_rows_are_training_rows_with_our_labels() -> None:
    assert len(PUBLIC) > 20_000
    assert all(list(row) == ["text", "lang", "intent", "split", "source_label"] for row in PUBLIC)
    assert {row["intent"] for row in PUBLIC} <= INTENTS
    assert {row["split"] for row in PUBLIC} == {"train"}


def test_no_public_row_copies_a_held_out_row() -> None:
    held_out = [row for row in ROWS if row["split"] == "dev"] + TEST_ROWS
    index: dict[str, list[int]] = {}
    grams = [_trigrams(str(row["text"])) for row in held_out]
    for i, kept in enumerate(grams):
        for gram in kept:
            index.setdefault(gram, []).append(i)
    copies = []
    for row in PUBLIC:
        mine = _trigrams(str(row["text"]))
        shared = Counter(i for gram in mine for i in index.get(gram, ()))
        copies += [(row["text"], held_out[i]["id"]) for i, n in shared.items() if n / len(mine | grams[i]) >= 0.6]
    assert copies == []
