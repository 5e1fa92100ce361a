"""Development set for time expressions: ctparse's human-annotated corpora (comtravo/ctparse, MIT).

    .venv/bin/python -m scripts.dev_times [--mirror /work/.mirror] [--show]

The external evaluation's time figures (Duckling, scripts/external_times.py) are a TEST set:
nobody tuning the parser looks at its rows. This is the set to look at instead. It is
written by another project again (neither Recognizers-Text, which the parser uses, nor
Duckling), so rules fixed while reading it still have to generalise to Duckling's corpus.

Sources, read at run time from local mirrors (``fetch github:comtravo/ctparse``, ``fetch
github:wanasit/chrono``, ``fetch github:mojombo/chronic``, all MIT; ``fetch
github:joestelmach/natty``, Apache 2.0), nothing copied here:
- ctparse ``datasets/timeparse_corpus.json``: about 2000 time expressions real people wrote in
  travel requests (English and German), each with its reference time and a human-annotated parse;
- ctparse ``ctparse/time/corpus.py``: the project's rule-by-rule test corpus (English variants);
- chrono ``test/en`` and ``test/zh/hans``: the JavaScript parser's unit tests, English and
  simplified Chinese, each a text, a reference ``new Date(...)`` and the expected fields;
- chronic ``test/test_parsing.rb``: the Ruby parser's English tests, said on 2006-08-16 14:00;
- natty ``DateTimeTest.java`` and ``TimeTest.java``: the Java parser's English tests, each
  with its reference date.

Only expressions whose gold is one instant with a clock time are kept, and only those after
their reference time (a reminder is never set in the past). Each is wrapped as a reminder
(``remind me <expression> to do it``, ``<expression>提醒我做事``) and resolved in UTC at its
reference time; it counts when ``TimeParser.parse`` gives exactly the gold minute. ``--show``
prints the misses, which is what this set is for.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from external_corpora import Mirror, MirrorMissing, Source

MIRROR = Path("/work/.mirror")
SOURCES = {
    "ctparse": Source("comtravo/ctparse", "6e78175", "MIT"),
    "chrono": Source("wanasit/chrono", "82c0e5b", "MIT"),
    "chronic": Source("mojombo/chronic", "416d504", "MIT"),
    "natty": Source("joestelmach/natty", "74389fe", "Apache-2.0"),
}
WRAP = {"en": "remind me {} to do it", "zh": "{}提醒我做事"}
_GOLD = re.compile(r"Time\[\]\{(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d) ")
# German words and letters (the rule corpus mixes both languages in one list of variants).
_GERMAN = re.compile(
    r"[äöüß]|\b(uhr|um|am|morgen|heute|gestern|nächste[nr]?|abends?|früh|mittags?|nachmittags?|vormittags?"
    r"|nachts?|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|januar|februar|märz|mai|juni|juli"
    r"|oktober|dezember|ab|bis|zum|vom|den|der|die|das|des|ca|gegen|halb|viertel|nach|vor|jetzt|ende|anfang"
    r"|woche|jahres|monats|tag|in \d+ minuten|minuten|stunden?|tagen?)\b",
    re.I,
)
console = Console(width=120)


@dataclass(frozen=True)
class DevTime:
    text: str
    now: datetime
    gold: datetime
    source: str
    lang: str = "en"


def _gold(parse: str) -> datetime | None:
    found = _GOLD.match(parse)
    return datetime(*map(int, found.groups()), tzinfo=UTC) if found else None


def _english(text: str) -> bool:
    return not _GERMAN.search(text)


# chrono: testSingleCase(chrono..., "text", new Date(2012, 7, 10, 8), (result) => { expect... })
_CASE = re.compile(r"testSingleCase\(\s*[\w.]+,\s*(?P<q>[\"'`])(?P<text>.*?)(?P=q),\s*new Date\((?P<ref>[\d\s,+-]+)\)")
_JS_DATE = re.compile(r"new Date\((?P<args>[\d\s,+-]+)\)")
_FIELD = re.compile(r'start\.get\("(?P<field>\w+)"\)\)\.toBe\((?P<value>\d+)\)')
_SPAN = re.compile(r"result\.text\)\.toBe\((?P<q>[\"'`])(?P<text>.*?)(?P=q)\)")


def _js_date(args: str) -> datetime | None:
    """``new Date(y, m0, d, h, mi, ...)`` as JavaScript reads it (months from 0, overflowing
    fields carried; arguments may be sums like ``10 - 1``); None for a timestamp."""
    numbers = [sum(int(t) for t in re.findall(r"[+-]?\d+", a.replace(" ", ""))) for a in args.split(",")]
    if len(numbers) < 2:
        return None
    y, m, d, h, mi = [*numbers, 1, 0, 0, 0][:5]
    first = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)
    return first + timedelta(days=d - 1, hours=h, minutes=mi)


def _chrono(chrono: Mirror) -> list[DevTime]:
    out = []
    for path in chrono.files("test/en") + chrono.files("test/zh/hans"):
        lang = "zh" if "/zh/" in path else "en"
        source = chrono.read(path)
        starts = [m.start() for m in re.finditer(r"testSingleCase\(", source)] + [len(source)]
        for begin, end in itertools.pairwise(starts):
            case = _CASE.match(source, begin)
            if case is None:
                continue
            body = source[case.end() : end]
            fields = {m["field"]: int(m["value"]) for m in _FIELD.finditer(body)}
            if "hour" not in fields:
                continue  # no clock time asserted: the product's own convention decides the hour
            now = _js_date(case["ref"])
            dates = [d for m in _JS_DATE.finditer(body) if (d := _js_date(m["args"]))]
            if now is None:
                continue
            if dates:
                gold = dates[0]
            else:
                gold = now.replace(
                    year=fields.get("year", now.year),
                    month=fields.get("month", now.month),
                    day=fields.get("day", now.day),
                    hour=fields["hour"],
                    minute=fields.get("minute", 0),
                )
            if (gold.hour, gold.minute) != (fields["hour"], fields.get("minute", gold.minute)):
                continue
            span = _SPAN.search(body)
            out.append(DevTime(span["text"] if span else case["text"], now, gold, f"chrono {lang}", lang))
    return out


# chronic: ``parse_now("text"[, options])`` then ``assert_equal Time.local(y, m, d, h[, mi[, s]])``,
# on one line or two. Only option-free calls and texts that name a clock time or an offset are kept:
# chronic's guess for a bare day ("tomorrow" -> noon) is its convention, not a clock time said.
_CHRONIC_NOW = datetime(2006, 8, 16, 14, tzinfo=UTC)
_PARSE_NOW = re.compile(r'parse_now\("(?P<text>[^"]*)"(?P<opts>[^)]*)\)')
_TIME_LOCAL = re.compile(r"assert_equal Time\.local\((?P<args>[\d\s,]+)\)")
_CLOCK = re.compile(
    r"\d\s*(am|pm|a\.m|p\.m|a|p)\b|\d[:.]\d\d\b(?!\.\d)|noon|midnight|o'?clock|\bat \d|\b(?!19|20)[0-2]\d[0-5]\d\b"
    r"|hours?\b|minutes?\b",
    re.I,
)


def _chronic(chronic: Mirror) -> list[DevTime]:
    out, pending = [], None
    for line in chronic.read("test/test_parsing.rb").splitlines():
        call, expect = _PARSE_NOW.search(line), _TIME_LOCAL.search(line)
        if call and not expect:
            pending = call
            continue
        call = call or pending
        pending = None
        if not (call and expect) or call["opts"].strip() or not _CLOCK.search(call["text"]):
            continue
        numbers = [int(n) for n in expect["args"].split(",")]
        if len(numbers) < 4 or (len(numbers) > 5 and numbers[5]):
            continue
        gold = datetime(*numbers[:5], tzinfo=UTC)
        out.append(DevTime(call["text"], _CHRONIC_NOW, gold, "chronic"))
    return out


# natty: a test method sets ``reference = ....parse("m/d/yyyy[ h:mm am]")`` (or a time alone,
# which Java puts on 1970-01-01; 2011-01-02, the other tests' day, is used instead), then calls
# ``validateDateTime(reference, "text", month, day, year, h, mi, s)`` or
# ``validateTime(reference, "text", h, mi, s)`` (the time on the reference's day). A bare
# number ("5") is left out: as a reminder's time it says nothing.
_NATTY_REF = re.compile(r'\.parse\("(?P<ref>\d+/\d+/\d+(?: \d+:\d\d [ap]m)?|\d+:\d\d [ap]m)"\)')
_NATTY_CASE = re.compile(r'validate(?P<kind>DateTime|Time)\(reference,\s*"(?P<text>[^"]*)",(?P<args>[\d\s,]+)\)')


def _natty(natty: Mirror) -> list[DevTime]:
    out = []
    for name in ("DateTimeTest.java", "TimeTest.java"):
        source = natty.read(f"src/test/java/com/joestelmach/natty/{name}")
        now = None
        for found in re.finditer(f"{_NATTY_REF.pattern}|{_NATTY_CASE.pattern}", source):
            if found["ref"]:
                ref = found["ref"] if "/" in found["ref"] else f"1/02/2011 {found['ref']}"
                fmt = "%m/%d/%Y %I:%M %p" if " " in ref else "%m/%d/%Y"
                now = datetime.strptime(ref, fmt).replace(tzinfo=UTC)
                continue
            numbers = [int(n) for n in found["args"].split(",")]
            if now is None or numbers[-1] or found["text"].isdigit():
                continue  # no reference yet, seconds (a reminder has minutes), or a bare number
            if found["kind"] == "Time":
                gold = now.replace(hour=numbers[0], minute=numbers[1])
            else:
                month, day, year, hour, minute, _ = numbers
                gold = datetime(year, month, day, hour, minute, tzinfo=UTC)
            out.append(DevTime(found["text"], now, gold, "natty"))
    return out


def examples(mirror: Path = MIRROR) -> list[DevTime]:
    ctparse, chrono, chronic, natty = (Mirror(mirror, SOURCES[name]) for name in SOURCES)
    out: list[DevTime] = []
    for row in json.loads(ctparse.read("datasets/timeparse_corpus.json")):
        gold = _gold(row["gold_parse"])
        if row["language"] == "en" and gold is not None:
            now = datetime.fromisoformat(row["ref_time"]).replace(tzinfo=UTC)
            out.append(DevTime(row["text"], now, gold, "dataset"))
    source = ctparse.read("ctparse/time/corpus.py")
    corpus = ast.literal_eval(source[source.index("corpus = [") + len("corpus = ") :].strip())
    for parse, ref, texts in corpus:
        gold = _gold(parse)
        if gold is None:
            continue
        now = datetime.fromisoformat(ref).replace(tzinfo=UTC)
        out += [DevTime(t, now, gold, "rules") for t in texts if _english(t)]
    out += _chrono(chrono) + _chronic(chronic) + _natty(natty)
    unique = {(e.text.lower(), e.now, e.gold): e for e in out if e.gold > e.now}
    return list(unique.values())


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--mirror", type=Path, default=MIRROR)
    args.add_argument("--show", action="store_true", help="print every miss (this is a dev set)")
    opts = args.parse_args(argv)
    from switchboard.intent_parser.times import TimeParser

    parser = TimeParser()
    try:
        rows = examples(opts.mirror)
    except MirrorMissing as missing:
        console.print(f"[red]{missing}[/]")
        return 2
    right: dict[str, list[int]] = {}
    for example in rows:
        found = parser.parse(WRAP[example.lang].format(example.text), "UTC", example.now, "reminder.create")
        ok = found is not None and not found.rrule and found.when == example.gold
        right.setdefault(example.source, []).append(ok)
        if not ok and opts.show:
            got = "-" if found is None else f"{found.when:%Y-%m-%d %H:%M}{' ' + found.rrule if found.rrule else ''}"
            console.print(
                f"[dim]{example.now:%a %Y-%m-%d %H:%M}[/] {example.text!r:45} "
                f"gold {example.gold:%Y-%m-%d %H:%M} got {got}",
                markup=True,
                highlight=False,
            )
    for source, marks in sorted(right.items()):
        console.print(f"{source}: {sum(marks)} / {len(marks)} exact ({sum(marks) / len(marks):.1%})")
    total = [m for marks in right.values() for m in marks]
    console.print(f"all: {sum(total)} / {len(total)} exact ({sum(total) / len(total):.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
