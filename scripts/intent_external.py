"""External evaluation of the intent parser: public corpora nobody on this project wrote.

    .venv/bin/python -m scripts.intent_external [--mirror /work/.mirror] [--max-rows 1500] [--json out.json]

Reads, at run time and from a local mirror of each public repository (never copied into
this repository), the TEST split of:

- CLINC150 (clinc/oos-eval): typed English requests, 150 intents plus out-of-scope;
- HWU64 (xliuhw/NLU-Evaluation-Data): spoken-style English commands to a home assistant,
  the held-out test fold of cross-validation fold 1;
- Home Assistant intents (home-assistant/intents): smart-home sentences, tests/en and tests/zh-cn;
- CAIS (Adaxry/CM-Net): Chinese smart-speaker requests (music, stories, weather, alarms, chat);
- Duckling (facebook/duckling): time expressions with gold values, Time/EN and Time/ZH corpora.

builds the parser exactly as the service ships it (config + data, trained on train + dev) and
prints aggregates only: rows, intent accuracy, macro-F1 and per-intent precision / recall / F1
per corpus and language, and the share of Duckling time expressions the parser resolves to the
exact gold instant. No row and no per-row result is ever printed or written: the people who
tune the parser must not see these corpora's rows. docs/external-evaluation.md explains the
corpora, the label mapping below and the selection of time expressions.

A missing mirror is an error (exit 2) that names what to fetch, never a silent skip.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

# The corpora and Duckling's time examples live beside this script (run as a script or as
# scripts.intent_external, and imported by scripts/bench_intent.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from external_corpora import CORPORA, SOURCES, Mirror, MirrorMissing, Row, Selection, mapped
from external_times import (
    DIVERGENCES,
    DUCKLING_FILES,
    REFERENCE,
    TIME_ZONE,
    WRAP,
    TimeExample,
    divergence,
    duckling_examples,
    select,
)

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "services" / "intent-parser"
DEFAULT_MIRROR = Path("/work/.mirror")
LABELS = (
    "chat",
    "help",
    "reminder.create",
    "reminder.list",
    "reminder.cancel",
    "device.control",
    "device.query",
    "ticket.create",
    "units.convert",
)
CRASH = "<exception>"
console = Console(width=120)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def build_parser() -> Any:
    """The parser as the service ships it: its config and data, trained on train + dev."""
    from switchboard.intent_parser.handlers import Parser

    return Parser.from_config(SERVICE / "config", SERVICE / "data", ("train", "dev"))


def _understand(parser: Any, text: str, tz: str, now: datetime) -> Any:
    from switchboard.events.v1 import messages_pb2 as m
    from switchboard.intent_parser.handlers import language_of

    message = m.InboundMessage(message_id="x", text=text, kind=m.MESSAGE_KIND_TEXT)
    return parser.understand(message, now, tz, language_of(text, "en"))


def scores(gold: list[str], guesses: list[Guess]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the intents present in ``gold`` (as scripts/bench_intent.py),
    precision / recall / F1 / support of every intent either side names, and how often the
    parser would ask which intent was meant (with its accuracy where it would not)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    predicted = [guess.intent for guess in guesses]
    unasked = [(want, guess.intent) for want, guess in zip(gold, guesses, strict=True) if not guess.asked]
    labels = sorted(set(gold) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    return {
        "rows": len(gold),
        "accuracy": float(accuracy_score(gold, predicted)) if gold else 0.0,
        "macro_f1": float(f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0)),
        "crashes": predicted.count(CRASH),
        "asked": (len(gold) - len(unasked)) / len(gold) if gold else 0.0,
        "accuracy_unasked": sum(want == got for want, got in unasked) / len(unasked) if unasked else 0.0,
        "per_intent": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
    }


class Guess(NamedTuple):
    intent: str
    asked: bool  # a close call: the parser would ask which of its first two was meant


def classify(parser: Any, rows: list[Row], label: str, progress: Progress) -> list[Guess]:
    task = progress.add_task(label, total=len(rows))
    out = []
    for row in rows:
        now = datetime(2026, 11, 24, 15, 30, tzinfo=ZoneInfo(row.tz))  # the own dataset's reference time
        try:
            parsed = _understand(parser, row.text, row.tz, now)
            out.append(Guess(parsed.intent, parser.close_call(parsed)))
        except Exception:  # noqa: BLE001 -- a crash is a measured failure, counted, not a stop
            out.append(Guess(CRASH, False))
        progress.advance(task)
    return out


# Whether a timer is a reminder is this evaluation's call (README: a reminder "asks to be reminded";
# a timer asks to be alerted when time is up); the pooled figures are also given without them.
TIMERS = {"timer", "HassStartTimer", "HassCancelTimer", "HassCancelAllTimers", "HassTimerStatus"}


def evaluate_intents(parser: Any, selections: dict[str, Selection], progress: Progress) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    pooled: dict[str, list[tuple[Row, Guess]]] = {}
    for name, selection in selections.items():
        predicted = classify(parser, selection.rows, name, progress)
        figures[name] = {}
        for lang in sorted({row.lang for row in selection.rows}):
            pairs = [(row, got) for row, got in zip(selection.rows, predicted, strict=True) if row.lang == lang]
            figures[name][lang] = scores([row.intent for row, _ in pairs], [got for _, got in pairs])
            pooled.setdefault(lang, []).extend(pairs)
    for name, keep in (
        ("all corpora", lambda row: True),
        ("all corpora, timers excluded", lambda row: row.source_label not in TIMERS),
    ):
        figures[name] = {}
        for lang, pairs in sorted(pooled.items()):
            kept = [(row, got) for row, got in pairs if keep(row)]
            figures[name][lang] = scores([row.intent for row, _ in kept], [got for _, got in kept])
    return figures


def evaluate_times(parser: Any, examples: list[TimeExample], progress: Progress) -> dict[str, Any]:
    """Exact-instant match of ``parser.times.parse`` (given the reminder intent) on the selected
    examples, per language; also end to end through ``understand``."""
    result: dict[str, Any] = {}
    task = progress.add_task("Duckling times", total=len(examples))
    for lang in sorted({e.lang for e in examples}):
        counts: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        diverging: Counter[str] = Counter()
        for example in (e for e in examples if e.lang == lang):
            progress.advance(task)
            gold, why = select(example)
            if gold is None:
                skipped[why] += 1
                continue
            differ = divergence(example, gold)
            diverging[differ or "agree"] += 1
            text = WRAP[lang].format(example.text)
            try:
                found = parser.times.parse(text, TIME_ZONE, REFERENCE, "reminder.create")
                exact = found is not None and not found.rrule and found.when == gold
                parsed = _understand(parser, text, TIME_ZONE, REFERENCE)
                slots = {s.name: s.value for s in parsed.slots}
                e2e = parsed.intent == "reminder.create" and slots.get("datetime") == gold.isoformat()
                e2e = e2e and "rrule" not in slots
            except Exception:  # noqa: BLE001 -- a crash is a measured failure, counted, not a stop
                counts["crashes"] += 1
                exact = e2e = False
                parsed = None
            counts["selected"] += 1
            counts["exact"] += exact
            counts["e2e_intent"] += parsed is not None and parsed.intent == "reminder.create"
            counts["e2e_exact"] += e2e
            if differ is None:
                counts["agree"] += 1
                counts["agree_exact"] += exact
        result[lang] = {
            **{key: counts[key] for key in ("selected", "exact", "agree", "agree_exact", "e2e_intent", "e2e_exact")},
            "crashes": counts["crashes"],
            "exact_rate": _rate(counts["exact"], counts["selected"]),
            "agree_rate": _rate(counts["agree_exact"], counts["agree"]),
            "skipped": dict(skipped.most_common()),
            "diverging": {k: v for k, v in diverging.most_common() if k != "agree"},
        }
    return result


def _rate(right: int, of: int) -> float | None:
    return right / of if of else None


def summary(mirror: Path = DEFAULT_MIRROR, max_rows: int = 1500, seed: int = 0, parser: Any = None) -> dict[str, Any]:
    """Every figure of the external evaluation, aggregates only (JSON-serialisable), of ``parser``
    (one built as the service ships it, by default)."""
    mirrors = open_mirrors(mirror)
    selections, corpora = {}, {}
    for corpus in CORPORA:
        selection = mapped(corpus, corpus.load(mirrors[corpus.source]), max_rows, seed)
        selections[corpus.name] = selection
        source = SOURCES[corpus.source]
        corpora[corpus.name] = {
            "repo": source.repo,
            "commit": mirrors[corpus.source].head(),
            "licence": source.licence,
            "split": corpus.split,
            "population": selection.population,
            "excluded": sum(selection.excluded.values()),
            "excluded_labels": len(selection.excluded),
            "sampled_out": selection.sampled_out,
            "scored": len(selection.rows),
        }
    examples = [
        e for lang, path in DUCKLING_FILES.items() for e in duckling_examples(mirrors["duckling"].read(path), lang)
    ]
    if parser is None:
        started = time.perf_counter()
        parser = build_parser()
        console.print(f"parser built as shipped (train + dev) in {time.perf_counter() - started:.1f} s")
    with Progress(console=console, transient=True) as progress:
        intents = evaluate_intents(parser, selections, progress)
        times = evaluate_times(parser, examples, progress)
    duckling = SOURCES["duckling"]
    sources = {"duckling": {"repo": duckling.repo, "commit": mirrors["duckling"].head(), "licence": duckling.licence}}
    return {"corpora": corpora, "time_source": sources["duckling"], "intents": intents, "times": times}


def bench_figures(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The external figures in scripts/bench_intent.py's side-by-side shape (rows, accuracy,
    macro_f1, time = (right, of)); the pooled row carries the Duckling time match."""
    out: dict[str, dict[str, Any]] = {}
    for name, per_language in figures["intents"].items():
        label = f"external: {name}"
        out[label] = {}
        for lang, f in per_language.items():
            time_of = figures["times"].get(lang, {}) if name == "all corpora" else {}
            out[label][lang] = {
                "rows": f["rows"],
                "accuracy": f["accuracy"],
                "macro_f1": f["macro_f1"],
                "time": (time_of.get("exact", 0), time_of.get("selected", 0)),
            }
    return out


def open_mirrors(root: Path) -> dict[str, Mirror]:
    """Every corpus's mirror; all missing ones are named at once."""
    mirrors, missing = {}, []
    for key, source in SOURCES.items():
        try:
            mirrors[key] = Mirror(root, source)
        except MirrorMissing as error:
            missing.append(str(error))
    if missing:
        raise MirrorMissing("\n".join(missing))
    for key, mirror in mirrors.items():
        if (head := mirror.head()) != SOURCES[key].commit:
            console.print(
                f"[yellow]{SOURCES[key].repo} is at {head[:12]}, the documented figures at {SOURCES[key].commit[:12]}"
            )
    return mirrors


# ---------------------------------------------------------------------------------------------
# Printing (aggregates only)
# ---------------------------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def show(figures: dict[str, Any]) -> None:
    table = Table(title="External corpora (test splits)")
    for column in ("corpus", "repository @ commit", "licence", "test rows", "excluded", "sampled out", "scored"):
        table.add_column(column, justify="left" if column in ("corpus", "repository @ commit", "licence") else "right")
    for name, c in figures["corpora"].items():
        table.add_row(
            name,
            f"{c['repo']} @ {c['commit'][:12]}",
            c["licence"],
            str(c["population"]),
            f"{c['excluded']} ({c['excluded_labels']} labels)",
            str(c["sampled_out"]),
            str(c["scored"]),
        )
    console.print(table)
    for name, per_language in figures["intents"].items():
        for lang, f in per_language.items():
            table = Table(
                title=f"{name}, {lang}: {f['rows']} rows, accuracy {_pct(f['accuracy'])}, macro-F1 {f['macro_f1']:.3f}"
            )
            for column in ("intent", "precision", "recall", "F1", "rows"):
                table.add_column(column, justify="left" if column == "intent" else "right")
            for intent, r in f["per_intent"].items():
                table.add_row(
                    intent, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])
                )
            console.print(table)
    table = Table(title="External intent figures")
    for column in ("corpus", "language", "rows", "accuracy", "macro-F1", "would ask", "accuracy not asked", "crashes"):
        table.add_column(column, justify="left" if column in ("corpus", "language") else "right")
    for name, per_language in figures["intents"].items():
        for lang, f in per_language.items():
            table.add_row(
                name,
                lang,
                str(f["rows"]),
                _pct(f["accuracy"]),
                f"{f['macro_f1']:.3f}",
                _pct(f["asked"]),
                _pct(f["accuracy_unasked"]),
                str(f["crashes"]),
            )
    console.print(table)
    table = Table(title=f"Duckling time expressions, said {REFERENCE.isoformat()} (exact instant)")
    for column in (
        "language",
        "selected",
        "exact",
        "agreeing subset",
        "exact there",
        "e2e intent",
        "e2e exact",
        "crashes",
    ):
        table.add_column(column, justify="left" if column == "language" else "right")
    for lang, t in figures["times"].items():
        table.add_row(
            lang,
            str(t["selected"]),
            f"{t['exact']} ({_pct(t['exact_rate'])})",
            str(t["agree"]),
            f"{t['agree_exact']} ({_pct(t['agree_rate'])})",
            f"{t['e2e_intent']} ({_pct(_rate(t['e2e_intent'], t['selected']))})",
            f"{t['e2e_exact']} ({_pct(_rate(t['e2e_exact'], t['selected']))})",
            str(t["crashes"]),
        )
    console.print(table)
    table = Table(title="Duckling examples skipped, and selected ones where the conventions may differ")
    for column in ("language", "reason", "examples"):
        table.add_column(column, justify="left" if column != "examples" else "right")
    for lang, t in figures["times"].items():
        for reason, n in t["skipped"].items():
            table.add_row(lang, f"skipped: {reason}", str(n))
        for rule, n in t["diverging"].items():
            table.add_row(lang, f"selected, may differ: {DIVERGENCES[rule]}", str(n))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="folder of the mirrored repositories")
    parser.add_argument("--max-rows", type=int, default=1500, help="rows per corpus, 0 for all (see sample())")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chat-row sample")
    parser.add_argument("--json", type=Path, help="also write the figures (aggregates only) to this file")
    args = parser.parse_args(argv)
    try:
        figures = summary(args.mirror, args.max_rows, args.seed)
    except MirrorMissing as error:
        console.print(f"[red]{error}")
        return 2
    show(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
