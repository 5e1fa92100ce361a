"""The saved intent model: it predicts exactly what the trained one does, it is found again
only for the same inputs, and a damaged file is trained over, never trusted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from switchboard.intent_parser import model_store
from switchboard.intent_parser.classifier import (
    CONFIG_PATH,
    ClassifierConfig,
    IntentClassifier,
    dataset_paths,
    load_rows,
    normalise,
)

TEXTS = [row["text"] for row in load_rows(dataset_paths()) if row["split"] == "dev"] + [
    "",
    "/help",
    "明天 9am 提醒我 call Bob",
    "turn the lights on please",
]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[list[Path], Path]:
    """Copies of the own dataset files and of config/intents.yaml, free to change."""
    data = tmp_path / "data"
    data.mkdir()
    datasets = [Path(shutil.copy(path, data)) for path in dataset_paths()]
    return datasets, Path(shutil.copy(CONFIG_PATH, tmp_path / "intents.yaml"))


def _trained(cache: Path, inputs: tuple[list[Path], Path]) -> IntentClassifier:
    datasets, config = inputs
    return model_store.trained(cache, datasets, ("train",), config, public=())


def test_a_loaded_model_predicts_exactly_what_the_trained_one_does(tmp_path: Path) -> None:
    trained = IntentClassifier.from_dataset(dataset_paths())
    model_store.save(trained, tmp_path / "model.npz")
    loaded = model_store.load(tmp_path / "model.npz", ClassifierConfig.load())
    assert np.array_equal(loaded.probabilities(TEXTS), trained.probabilities(TEXTS))
    assert loaded.predict_many(TEXTS) == trained.predict_many(TEXTS)
    assert [loaded.cues.active(normalise(t)) for t in TEXTS] == [trained.cues.active(normalise(t)) for t in TEXTS]


def test_the_second_replica_loads_instead_of_training(
    tmp_path: Path, inputs: tuple[list[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _trained(tmp_path / "cache", inputs)
    assert len(list((tmp_path / "cache").glob("intent-model-*.npz"))) == 1

    def no_training(*args: object, **kwargs: object) -> IntentClassifier:
        raise AssertionError("trained although a saved model of the same inputs was there")

    monkeypatch.setattr(IntentClassifier, "from_dataset", no_training)
    second = _trained(tmp_path / "cache", inputs)
    assert second.predict_many(TEXTS) == first.predict_many(TEXTS)


@pytest.mark.parametrize("changed", ["dataset", "config"])
def test_changed_inputs_name_another_model(tmp_path: Path, inputs: tuple[list[Path], Path], changed: str) -> None:
    _trained(tmp_path / "cache", inputs)
    datasets, config = inputs
    target = datasets[0] if changed == "dataset" else config
    target.write_text(target.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    _trained(tmp_path / "cache", inputs)
    assert len(list((tmp_path / "cache").glob("intent-model-*.npz"))) == 2


def test_a_damaged_model_is_trained_over(tmp_path: Path, inputs: tuple[list[Path], Path]) -> None:
    expected = _trained(tmp_path / "cache", inputs).predict_many(TEXTS)
    (saved,) = (tmp_path / "cache").glob("intent-model-*.npz")
    saved.write_bytes(saved.read_bytes()[:1000])
    assert _trained(tmp_path / "cache", inputs).predict_many(TEXTS) == expected
    model_store.load(saved, ClassifierConfig.load(inputs[1]))  # written again, whole


def test_an_object_array_is_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    np.savez(path, meta=np.array([{"format": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        model_store.load(path, ClassifierConfig.load())
