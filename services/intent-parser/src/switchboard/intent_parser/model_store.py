"""A trained intent classifier kept on disk, so that a replica starts in a second instead of
training for 12 s (over a minute on a busy node).

The file is named by a fingerprint of everything training reads: the dataset files, the
public corpora's rows, config/intents.yaml, the splits, the code of the classifier and the
versions of scikit-learn and NumPy. Changing any of them names another file, so a stale model
is never loaded; the first replica to start after the change trains and writes it.

The format is a NumPy ``.npz`` read with ``allow_pickle=False``: arrays (inverse document
frequencies, coefficients, intercepts) and JSON (vocabularies, cue patterns, classes), never a
pickle, so a file that is not ours can fail to load but cannot run code. A file that fails to
load is logged and the model trained instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sklearn  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from switchboard.intent_parser import classifier as classifier_module
from switchboard.intent_parser import cues as cues_module
from switchboard.intent_parser.classifier import ClassifierConfig, IntentClassifier
from switchboard.intent_parser.cues import Cues

logger = logging.getLogger(__name__)

FORMAT = 1


def fingerprint(inputs: Sequence[Path], splits: Collection[str]) -> str:
    """A SHA-256 of the training inputs' bytes (in the given order), the splits, the
    classifier's code and the library versions."""
    digest = hashlib.sha256()
    parts: list[bytes] = [
        f"format {FORMAT} sklearn {sklearn.__version__} numpy {np.__version__}".encode(),
        ",".join(sorted(splits)).encode(),
        Path(classifier_module.__file__).read_bytes(),
        Path(cues_module.__file__).read_bytes(),
    ]
    parts += [path.name.encode() + b"\0" + path.read_bytes() for path in inputs]
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def save(model: IntentClassifier, path: Path) -> None:
    """Write ``model`` to ``path`` atomically (a reader sees the old file or the whole new one)."""
    meta = {
        "format": FORMAT,
        "char_vocabulary": _terms(model.char),
        "word_vocabulary": _terms(model.word),
        "cues": model.cues.patterns,
        "cue_weight": model.cues.weight,
        "classes": [str(label) for label in model.model.classes_],
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8),
        char_idf=model.char.idf_,
        word_idf=model.word.idf_,
        coef=model.model.coef_,
        intercept=model.model.intercept_,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: Path, config: ClassifierConfig) -> IntentClassifier:
    """The classifier saved at ``path``, with ``config`` (which the fingerprint covers)."""
    with np.load(path, allow_pickle=False) as arrays:
        meta: dict[str, Any] = json.loads(arrays["meta"].tobytes().decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: format {meta.get('format')!r}, not {FORMAT}")
        char = _vectorizer(classifier_module.char_vectorizer(config), meta["char_vocabulary"], arrays["char_idf"])
        word = _vectorizer(classifier_module.word_vectorizer(config), meta["word_vocabulary"], arrays["word_idf"])
        model = LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=5000)
        model.classes_ = np.asarray(meta["classes"])
        model.coef_ = arrays["coef"]
        model.intercept_ = arrays["intercept"]
    cues = Cues(meta["cues"], float(meta["cue_weight"]))
    model.n_features_in_ = len(char.vocabulary_) + len(word.vocabulary_) + cues.size
    if model.coef_.shape[1] != model.n_features_in_:
        raise ValueError(f"{path}: {model.coef_.shape[1]} coefficients for {model.n_features_in_} features")
    return IntentClassifier(config, char, word, cues, model)


def trained(
    cache_dir: Path | None,
    datasets: Sequence[Path],
    splits: Collection[str],
    config_path: Path,
    public: Sequence[Path],
) -> IntentClassifier:
    """The classifier of these inputs: loaded from ``cache_dir`` when a file of the same
    fingerprint is there, else trained (and written there when ``cache_dir`` is set)."""
    config = ClassifierConfig.load(config_path)
    if cache_dir is None:
        return IntentClassifier.from_dataset(datasets, tuple(splits), config=config, public=public)
    path = cache_dir / f"intent-model-{fingerprint([*datasets, *public, config_path], splits)[:32]}.npz"
    if path.exists():
        try:
            model = load(path, config)
            logger.info("intent model loaded", extra={"path": str(path)})
            return model
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("intent model unreadable; training", extra={"path": str(path), "error": str(exc)})
    model = IntentClassifier.from_dataset(datasets, tuple(splits), config=config, public=public)
    try:
        save(model, path)
        logger.info("intent model saved", extra={"path": str(path)})
    except OSError as exc:  # a read-only or full volume: the model still serves
        logger.warning("intent model not saved", extra={"path": str(path), "error": str(exc)})
    return model


def _terms(vectorizer: TfidfVectorizer) -> list[str]:
    """The vectorizer's vocabulary as a list of terms in column order."""
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    return terms


def _vectorizer(vectorizer: TfidfVectorizer, terms: list[str], idf: np.ndarray) -> TfidfVectorizer:
    if len(terms) != len(idf):
        raise ValueError(f"{len(terms)} terms for {len(idf)} weights")
    vectorizer.vocabulary_ = {term: column for column, term in enumerate(terms)}
    vectorizer.idf_ = idf
    return vectorizer
