"""Vendor the TRAIN splits of two public English corpora as extra training rows for the intent
classifier (services/intent-parser/data/public/, read with the own rows at start-up).

    .venv/bin/python -m scripts.import_public_train [--mirror /work/.mirror]

- CLINC150 (clinc/oos-eval, CC BY 3.0): ``train`` and ``oos_train`` of data/data_full.json;
- HWU64 (xliuhw/NLU-Evaluation-Data, CC BY 4.0): the training fold of cross-validation fold 1
  (KFold_1/trainset), the complement of the fold the external evaluation scores.

Their labels are mapped to ours with the mapping the external evaluation uses
(scripts/external_corpora.py: one mapping, decided from label names and definitions); rows of an
excluded label are dropped. A row is also dropped when it is a copy, numbers masked, of one of
the own dev or held-out test rows (the check of services/intent-parser/tests/test_dataset.py),
so that the own figures stay held out. The test splits of these corpora are never read here.

Writes one JSON Lines file per corpus, sorted, one row per distinct (text, label):
{"text": ..., "lang": "en", "intent": ..., "split": "train", "source_label": ...}.
The mirrors are pinned by commit (SOURCES); another checked-out commit is an error.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parent))
from external_corpora import CLINC, HWU, SOURCES, Mapping, Mirror, MirrorMissing

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "services" / "intent-parser" / "data"
OUT = DATA / "public"
HWU_TRAIN_FOLD = (
    "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1/trainset"
)
console = Console(width=120)


def clinc_train(mirror: Mirror) -> list[tuple[str, str]]:
    data = json.loads(mirror.read("data/data_full.json"))
    return [(text, label) for text, label in data["train"]] + [(text, "oos") for text, _ in data["oos_train"]]


def hwu_train(mirror: Mirror) -> list[tuple[str, str]]:
    out = []
    for path in mirror.files(HWU_TRAIN_FOLD):
        if path.endswith(".csv"):
            for row in csv.DictReader(io.StringIO(mirror.read(path)), delimiter=";"):
                out.append((row["answer_from_anno"].strip(), f"{row['scenario']}_{row['intent']}"))
    return out


CORPORA: dict[str, tuple[str, Callable[[Mirror], list[tuple[str, str]]], Mapping]] = {
    "clinc150": ("clinc", clinc_train, CLINC),
    "hwu64": ("hwu", hwu_train, HWU),
}

# Numbers in digits or Chinese numerals read as one symbol (as services/intent-parser/tests/test_dataset.py).
_NUMBER = re.compile(r"[0-9]+(?:[.:][0-9]+)?|[零一二两三四五六七八九十百千万半]+")
COPY = 0.6  # trigram Jaccard at or above which a row copies an own held-out row


def trigrams(text: str) -> frozenset[str]:
    text = _NUMBER.sub("#", text.casefold())
    return frozenset(text[i : i + 3] for i in range(len(text) - 2)) or frozenset({text})


class HeldOut:
    """The own dev and test rows' trigram sets, indexed by trigram, to find copies fast."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.sets = [trigrams(text) for text in texts]
        self.index: dict[str, list[int]] = defaultdict(list)
        for i, grams in enumerate(self.sets):
            for gram in grams:
                self.index[gram].append(i)

    def copies(self, text: str) -> bool:
        grams = trigrams(text)
        shared: Counter[int] = Counter(i for gram in grams for i in self.index.get(gram, ()))
        return any(n / len(grams | self.sets[i]) >= COPY for i, n in shared.items())


def held_out_texts() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["split"] in ("dev", "test"):
                texts.append(row["text"])
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    args = parser.parse_args(argv)
    held_out = HeldOut(held_out_texts())
    OUT.mkdir(exist_ok=True)
    for name, (source, load, mapping) in CORPORA.items():
        try:
            mirror = Mirror(args.mirror, SOURCES[source])
        except MirrorMissing as missing:
            console.print(f"[red]{missing}")
            return 2
        if (head := mirror.head()) != SOURCES[source].commit:
            console.print(f"[red]{SOURCES[source].repo} is at {head}, pinned at {SOURCES[source].commit}")
            return 2
        kept, dropped = {}, Counter()
        for text, label in track(load(mirror), description=name, console=console):
            ours = mapping(label)
            if ours is None:
                dropped["excluded label"] += 1
            elif not text:
                dropped["empty"] += 1
            elif held_out.copies(text):
                dropped["copies an own dev/test row"] += 1
            else:
                kept[(text, label)] = ours
        rows = [
            {"text": text, "lang": "en", "intent": ours, "split": "train", "source_label": label}
            for (text, label), ours in sorted(kept.items())
        ]
        path = OUT / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        intents = Counter(row["intent"] for row in rows)
        console.print(
            f"{path.relative_to(ROOT)}: {len(rows)} rows {dict(intents.most_common())}; dropped {dict(dropped)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
