"""The intent classifier: a logistic regression over character n-grams, word / Chinese
character n-grams and configured keyword cues, trained at start-up on the labelled dataset
(the own rows, data/utterances.*.jsonl, about 1 000, and the public corpora's training rows
vendored in data/public/, about 22 000: some 12 s on one core). Deterministic: rows are sorted
before training and the solver has no randomness. A replica may load the model another one
trained from the same inputs instead (model_store.py; no pickle).

The intents, the fallback, the confidence threshold, the exact-match commands and the cues
live in config/intents.yaml: an intent is added with labelled rows and an entry there.
``python -m switchboard.intent_parser.classifier`` prints the cross-validated figures on
the train split and the report on the dev split.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from scipy import sparse, special  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from switchboard.common.text import CJK_RANGES
from switchboard.intent_parser.cues import Cues

SERVICE_DIR = Path(__file__).resolve().parents[3]
CONFIG_PATH = SERVICE_DIR / "config" / "intents.yaml"
DATA_DIR = SERVICE_DIR / "data"

# Zero-width and joiner characters, dropped; every run of white space becomes one space.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACE = re.compile(r"\s+")
_CJK = CJK_RANGES
# Latin (or other non-CJK) words, single CJK characters, single punctuation marks.
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+(?:'[^\W_{_CJK}]+)?|[^\w\s]")
_ALNUM = re.compile(r"[^\W_]")
_TRAILING_PUNCTUATION = re.compile(r"[\W_]+$")
# A boundary between a CJK character and a Latin letter or a digit ("明天9am提醒我call" gets
# spaces), so that word patterns (\b) and word n-grams work in mixed messages.
_SCRIPT_BOUNDARY = re.compile(rf"(?<=[{_CJK}])(?=[^\W_{_CJK}])|(?<=[^\W_{_CJK}])(?=[{_CJK}])")


@dataclass(frozen=True)
class Prediction:
    """An intent and the model's probability for it (1.0 when a rule decided), and the
    model's second choice with its probability (none when a rule decided)."""

    intent: str
    confidence: float
    runner_up: str = ""
    runner_up_confidence: float = 0.0


@dataclass(frozen=True)
class ClassifierConfig:
    """What config/intents.yaml says (see the comments there)."""

    intents: tuple[str, ...] = ()  # empty: whatever labels the rows have
    fallback: str = "chat"
    threshold: float = 0.3
    temperature: float = 1.0  # probabilities = softmax(model scores / temperature)
    clarify_margin: float = 0.0  # 0: never ask
    max_chars: int = 2000
    commands: Mapping[str, str] = field(default_factory=dict)  # normalised text -> intent
    cues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group -> patterns
    C: float = 10.0
    char_ngrams: tuple[int, int] = (1, 4)
    word_ngrams: tuple[int, int] = (1, 2)
    cue_weight: float = 1.0
    class_weight: str | None = "balanced"
    public_weight: float = 1.0

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> ClassifierConfig:
        """Read the YAML configuration."""
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        intents: Mapping[str, Any] = raw.get("intents") or {}
        model: Mapping[str, Any] = raw.get("model") or {}
        cues = {name: tuple(patterns) for name, patterns in (raw.get("cues") or {}).items()}
        commands: dict[str, str] = {}
        for intent, spec in intents.items():
            spec = spec or {}
            for name, patterns in (spec.get("cues") or {}).items():
                cues[f"{intent}:{name}"] = tuple(patterns)
            for command in spec.get("commands") or ():
                commands[_command(normalise(command))] = intent
        defaults = cls()
        return cls(
            intents=tuple(intents),
            fallback=raw.get("fallback", defaults.fallback),
            threshold=float(raw.get("threshold", defaults.threshold)),
            temperature=float(raw.get("temperature", defaults.temperature)),
            clarify_margin=float(raw.get("clarify_margin", defaults.clarify_margin)),
            max_chars=int(raw.get("max_chars", defaults.max_chars)),
            commands=commands,
            cues=cues,
            C=float(model.get("C", defaults.C)),
            char_ngrams=_pair(model.get("char_ngrams", defaults.char_ngrams)),
            word_ngrams=_pair(model.get("word_ngrams", defaults.word_ngrams)),
            cue_weight=float(model.get("cue_weight", defaults.cue_weight)),
            class_weight=model.get("class_weight", defaults.class_weight),
            public_weight=float(model.get("public_weight", defaults.public_weight)),
        )


def _pair(value: Sequence[int]) -> tuple[int, int]:
    low, high = value
    return int(low), int(high)


def normalise(text: str, max_chars: int | None = None) -> str:
    """NFKC (full width to ASCII), invisible characters removed, case folded, a space between
    CJK and Latin/digit runs, white space collapsed; cut to ``max_chars`` first so that a huge
    message costs no more than a short one."""
    if max_chars is not None:
        text = text[:max_chars]
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    return _SPACE.sub(" ", _SCRIPT_BOUNDARY.sub(" ", text)).strip()


def _command(text: str) -> str:
    """What is looked up in the commands: "/help@some_bot now" -> "/help", "help!!!" -> "help"."""
    if text.startswith("/"):
        return text.split()[0].split("@")[0]
    return _TRAILING_PUNCTUATION.sub("", text)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def load_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The rows of JSON Lines files, in file order (blank lines skipped)."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    return rows


def dataset_paths(data_dir: Path = DATA_DIR) -> list[Path]:
    """The shipped dataset files (data/utterances.*.jsonl), sorted."""
    return sorted(data_dir.glob("utterances.*.jsonl"))


def public_paths(data_dir: Path = DATA_DIR) -> list[Path]:
    """The public corpora's training rows (data/public/*.jsonl, every row is training data;
    scripts/import_public_train.py writes them), sorted."""
    return sorted((data_dir / "public").glob("*.jsonl"))


def char_vectorizer(config: ClassifierConfig) -> TfidfVectorizer:
    """The (unfitted) character n-gram features of ``config``."""
    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=config.char_ngrams, sublinear_tf=True, lowercase=False, dtype=np.float64
    )


def word_vectorizer(config: ClassifierConfig) -> TfidfVectorizer:
    """The (unfitted) word / Chinese character n-gram features of ``config``."""
    return TfidfVectorizer(
        tokenizer=_tokens,
        token_pattern=None,
        ngram_range=config.word_ngrams,
        sublinear_tf=True,
        lowercase=False,
        dtype=np.float64,
    )


class IntentClassifier:
    """Predicts the intent of a message; see the module docstring."""

    def __init__(
        self,
        config: ClassifierConfig,
        char: TfidfVectorizer,
        word: TfidfVectorizer,
        cues: Cues,
        model: LogisticRegression,
    ) -> None:
        self.config = config
        self.char = char
        self.word = word
        self.cues = cues
        self.model = model
        self.intents: tuple[str, ...] = tuple(str(label) for label in model.classes_)
        # The model's weights, features by intents, in row order for the sparse product.
        # scikit-learn's decision_function multiplies by ``coef_.T``, a column-ordered view that
        # SciPy copies whole (features x intents floats) on every call: 6 ms for one message
        # against microseconds here, most of the parser's time under load.
        self._weights = np.ascontiguousarray(model.coef_.T)
        self._intercept = np.asarray(model.intercept_)

    @classmethod
    def train(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        config: ClassifierConfig | None = None,
        public: Iterable[Mapping[str, Any]] = (),
    ) -> IntentClassifier:
        """Fit on rows with "text" and "intent" (the shipped configuration by default); the
        ``public`` corpora's rows count ``config.public_weight`` each, the own rows 1."""
        config = config or ClassifierConfig.load()
        weights: dict[tuple[str, str], float] = {}
        for source, weight in ((public, config.public_weight), (rows, 1.0)):
            for row in source:
                pair = (normalise(str(row["text"]), config.max_chars), str(row["intent"]))
                weights[pair] = max(weight, weights.get(pair, 0.0))  # a row both sides counts as own
        pairs = sorted(weights)
        labels = sorted({intent for _, intent in pairs})
        if config.intents and (unknown := set(labels) - set(config.intents)):
            raise ValueError(f"labels not in the configuration's intents: {sorted(unknown)}")
        if len(labels) < 2:
            raise ValueError("need rows of at least two intents")
        unknown_targets = {config.fallback, *config.commands.values()} - set(config.intents or labels)
        if unknown_targets:
            raise ValueError(f"fallback/commands name unknown intents: {sorted(unknown_targets)}")
        texts = [text for text, _ in pairs]
        char, word = char_vectorizer(config), word_vectorizer(config)
        cues = Cues.attested(config.cues, config.cue_weight, texts)
        features = sparse.hstack([char.fit_transform(texts), word.fit_transform(texts), cues.transform(texts)]).tocsr()
        model = LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=5000)
        model.fit(features, [intent for _, intent in pairs], sample_weight=[weights[pair] for pair in pairs])
        return cls(config, char, word, cues, model)

    @classmethod
    def from_dataset(
        cls,
        paths: Sequence[Path],
        splits: Collection[str] = ("train",),
        *,
        config: ClassifierConfig | None = None,
        public: Sequence[Path] = (),
    ) -> IntentClassifier:
        """Train on the rows of the given splits of JSON Lines files, and every row of ``public``."""
        rows = [row for row in load_rows(paths) if row.get("split") in splits]
        return cls.train(rows, config=config, public=load_rows(public))

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Model probabilities, one row per text, columns in ``self.intents`` order (no rules)."""
        return self._probabilities([normalise(text, self.config.max_chars) for text in texts])

    def _probabilities(self, normalised: Sequence[str]) -> npt.NDArray[np.float64]:
        features = sparse.hstack(
            [self.char.transform(normalised), self.word.transform(normalised), self.cues.transform(normalised)]
        ).tocsr()
        scores = np.asarray(features @ self._weights) + self._intercept
        if scores.shape[1] == 1:  # two intents: the score of the second against the first
            scores = np.column_stack([np.zeros_like(scores), scores])
        # At temperature 1 this is the model's own predict_proba (multinomial, or the logistic
        # of the one score for two intents).
        return np.asarray(special.softmax(scores / self.config.temperature, axis=1))

    def predict(self, text: str) -> Prediction:
        """The intent of one message, or the fallback when the model is not sure enough."""
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        """``predict`` for a batch (faster per message)."""
        config = self.config
        results: list[Prediction | None] = []
        pending: list[int] = []
        normalised_texts = [normalise(text, config.max_chars) for text in texts]
        for index, normalised in enumerate(normalised_texts):
            if not _ALNUM.search(normalised):  # empty, blank, emoji or punctuation only
                results.append(Prediction(config.fallback, 1.0))
            elif (command := _command(normalised)) in config.commands:
                results.append(Prediction(config.commands[command], 1.0))
            else:
                results.append(None)
                pending.append(index)
        if pending:
            probabilities = self._probabilities([normalised_texts[i] for i in pending])
            fallback = self.intents.index(config.fallback) if config.fallback in self.intents else None
            for index, row in zip(pending, probabilities, strict=True):
                second, best = (int(i) for i in np.argsort(row)[-2:])
                if row[best] >= config.threshold or fallback is None:
                    results[index] = Prediction(
                        self.intents[best], float(row[best]), self.intents[second], float(row[second])
                    )
                else:
                    results[index] = Prediction(config.fallback, float(row[fallback]))
        return [result for result in results if result is not None]


def out_of_fold(
    rows: Sequence[Mapping[str, Any]],
    *,
    config: ClassifierConfig | None = None,
    folds: int = 5,
    seed: int = 0,
    public: Sequence[Mapping[str, Any]] = (),
) -> list[Prediction]:
    """A prediction for every row by a model trained on the other folds (stratified) and the
    ``public`` rows, with the threshold of ``config``: pass ``threshold=0`` to get the model's
    own choice."""
    from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

    config = config or ClassifierConfig.load()
    labels = [str(row["intent"]) for row in rows]
    predictions: list[Prediction | None] = [None] * len(rows)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(np.zeros(len(rows)), labels):
        classifier = IntentClassifier.train([rows[i] for i in train_index], config=config, public=public)
        found = classifier.predict_many([str(rows[i]["text"]) for i in test_index])
        for i, prediction in zip(test_index, found, strict=True):
            predictions[i] = prediction
    return [prediction for prediction in predictions if prediction is not None]


def threshold_curve(
    rows: Sequence[Mapping[str, Any]],
    raw: Sequence[Sequence[Prediction]],
    fallback: str,
    thresholds: Sequence[float],
) -> list[float]:
    """Accuracy at each threshold of raw (threshold 0) predictions, averaged over CV runs."""
    labels = [str(row["intent"]) for row in rows]
    curve = []
    for threshold in thresholds:
        correct = 0
        for run in raw:
            for label, prediction in zip(labels, run, strict=True):
                intent = prediction.intent if prediction.confidence >= threshold else fallback
                correct += intent == label
        curve.append(correct / (len(labels) * len(raw)))
    return curve


def main(argv: Sequence[str] | None = None) -> int:
    """Cross-validate on train (and choose the threshold), then report on dev."""
    from sklearn.metrics import classification_report  # type: ignore[import-untyped]

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_PATH)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="CV repetitions (seeds 0..runs-1)")
    args = parser.parse_args(argv)
    out = sys.stdout.write
    config = ClassifierConfig.load(args.config)
    rows = load_rows(dataset_paths())
    public = load_rows(public_paths())
    train = [row for row in rows if row["split"] == "train"]
    dev = [row for row in rows if row["split"] == "dev"]

    raw_config = replace(config, threshold=0.0)
    raw = [
        out_of_fold(train, config=raw_config, folds=args.folds, seed=seed, public=public) for seed in range(args.runs)
    ]
    thresholds = [round(0.05 * i, 2) for i in range(19)]
    curve = threshold_curve(train, raw, config.fallback, thresholds)
    best = max(curve)
    chosen = max(t for t, accuracy in zip(thresholds, curve, strict=True) if accuracy == best)
    out(
        f"CV on train ({len(train)} rows + {len(public)} public, {args.folds} folds x {args.runs} runs): "
        "accuracy by threshold\n"
    )
    out("".join(f"  {t:.2f}: {a:.4f}\n" for t, a in zip(thresholds, curve, strict=True)))
    out(f"best CV threshold {chosen:.2f} ({best:.4f}); configured {config.threshold:.2f}\n")
    cv_errors = Counter(
        (str(row["intent"]), p.intent)
        for run in raw
        for row, p in zip(train, run, strict=True)
        if (p.intent if p.confidence >= config.threshold else config.fallback) != row["intent"]
    )
    out(f"CV confusions at the configured threshold (summed over runs): {cv_errors.most_common()}\n\n")

    started = time.perf_counter()
    classifier = IntentClassifier.train(train, config=config, public=public)
    trained = time.perf_counter() - started
    predictions = classifier.predict_many([str(row["text"]) for row in dev])
    gold = [str(row["intent"]) for row in dev]
    found = [p.intent for p in predictions]
    accuracy = sum(g == f for g, f in zip(gold, found, strict=True)) / len(dev)
    out(f"dev ({len(dev)} rows), trained on train + public in {trained:.2f} s: accuracy {accuracy:.4f}\n")
    out(classification_report(gold, found, digits=3, zero_division=0))
    out(f"confusions (gold, predicted): {Counter((g, f) for g, f in zip(gold, found, strict=True) if g != f)}\n")
    for row, prediction in zip(dev, predictions, strict=True):
        if prediction.intent != row["intent"]:
            out(
                f"  {row['id']} {row['intent']} -> {prediction.intent} ({prediction.confidence:.2f}): {row['text']!r}\n"
            )

    texts = [str(row["text"]) for row in rows]
    started = time.perf_counter()
    for text in texts:
        classifier.predict(text)
    single = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    classifier.predict_many(texts)
    batched = len(texts) / (time.perf_counter() - started)
    out(f"predict: {single:.0f} messages/s one at a time, {batched:.0f}/s in a batch of {len(texts)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
