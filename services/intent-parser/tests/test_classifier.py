"""The intent classifier: accuracy on the dev split, determinism, odd inputs, rules, and an
intent added through the configuration alone."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import sparse

from switchboard.intent_parser.classifier import (
    CONFIG_PATH,
    ClassifierConfig,
    IntentClassifier,
    Prediction,
    dataset_paths,
    load_rows,
    normalise,
)
from switchboard.intent_parser.cues import alternatives

ROWS = load_rows(dataset_paths())
TRAIN = [row for row in ROWS if row["split"] == "train"]
DEV = [row for row in ROWS if row["split"] == "dev"]


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return IntentClassifier.from_dataset(dataset_paths())


def test_dataset_is_there() -> None:
    assert len(TRAIN) > 400 and len(DEV) > 150
    assert {row["intent"] for row in TRAIN} == set(ClassifierConfig.load().intents)


def test_dev_accuracy(classifier: IntentClassifier) -> None:
    predictions = classifier.predict_many([row["text"] for row in DEV])
    correct = sum(p.intent == row["intent"] for p, row in zip(predictions, DEV, strict=True))
    # Trained on train only, so the cues count only where train rows attest them (below).
    assert correct / len(DEV) >= 0.90


def test_deterministic(classifier: IntentClassifier) -> None:
    again = IntentClassifier.train(reversed(TRAIN))  # order of the rows does not matter
    texts = [row["text"] for row in ROWS] + ["", "turn the lights on please", "明天 9am 提醒我 call Bob"]
    assert [again.predict(text) for text in texts] == [classifier.predict(text) for text in texts]


def test_predict_many_is_predict(classifier: IntentClassifier) -> None:
    texts = [row["text"] for row in DEV[:40]] + ["", "/help"]
    assert classifier.predict_many(texts) == [classifier.predict(text) for text in texts]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("remind me to call mom at 5pm", "reminder.create"),
        ("明天早上八点提醒我去健身房", "reminder.create"),
        ("remind me in 1/2 hour to call mom", "reminder.create"),  # "2 hour to c" reads like a conversion
        ("show me my reminders", "reminder.list"),
        ("turn off the bedroom light", "device.control"),
        ("卧室的灯开着吗", "device.query"),
        ("I want a refund", "ticket.create"),
        ("what can you do?", "help"),
        ("tell me a joke", "chat"),
    ],
)
def test_plain_cases(classifier: IntentClassifier, text: str, intent: str) -> None:
    prediction = classifier.predict(text)
    assert prediction.intent == intent
    assert 0.0 < prediction.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t  ",
        "\u3000\u200b\ufeff",
        "😂😂😂",
        "👍🏽",
        "\uff1f\uff1f\uff1f",
        bytes(range(256)).decode("latin-1"),
        bytes(range(128, 256)).decode("utf-8", errors="surrogateescape"),  # lone surrogates
        b"\xff\xfe\x00r\x00e\x00m\x00i\x00n\x00d".decode("utf-8", errors="replace"),
        "\x00" * 1000,
        "a" * 1_000_000,
        "提醒我" * 400_000,
        "remind me " + "🙂" * 1_000_000,
        "مرحبا كيف حالك",
        "Z̴̢̛a̷l̸g̶o̵ ̵t̷e̴x̸t̶",
        "<script>alert(1)</script>",
        "DROP TABLE users; --",
    ],
)
def test_odd_inputs(classifier: IntentClassifier, text: str) -> None:
    prediction = classifier.predict(text)
    assert isinstance(prediction, Prediction)
    assert prediction.intent in classifier.intents
    assert 0.0 <= prediction.confidence <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "😂😂😂", "👍", "\uff1f\uff1f\uff1f", "...", "\u200b"])
def test_nothing_to_classify_is_the_fallback(classifier: IntentClassifier, text: str) -> None:
    assert classifier.predict(text) == Prediction("chat", 1.0)


def test_huge_input_is_read_by_its_prefix(classifier: IntentClassifier) -> None:
    text = "remind me to call mom at 5pm. " + "blah " * 400_000  # 2 MB; only the prefix is read
    assert classifier.predict(text).intent == "reminder.create"


@pytest.mark.parametrize(
    "text", ["/help", "/help@switchboard_bot", "/start", "HELP!!!", "\uff0f\uff48\uff45\uff4c\uff50", "帮助", " /帮助 "]
)
def test_help_commands(classifier: IntentClassifier, text: str) -> None:
    assert classifier.predict(text) == Prediction("help", 1.0)


def test_low_confidence_falls_back(classifier: IntentClassifier) -> None:
    strict = IntentClassifier.train(TRAIN, config=replace(classifier.config, threshold=1.01))
    prediction = strict.predict("turn off the bedroom light")
    assert prediction.intent == "chat"
    assert prediction.confidence < 0.5  # the model's probability for chat


def test_normalise() -> None:
    assert normalise("\uff34\uff35\uff32\uff2e\u3000\uff4f\uff46\uff46\u200b the LIGHTS") == "turn off the lights"
    assert normalise("明天9am提醒我call Bob") == "明天 9am 提醒我 call bob"
    assert normalise("x" * 5000, max_chars=2000) == "x" * 2000


def test_load_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "hi", "intent": "chat"}\n\n{"text": "lights off", "intent": "device.control"}\n')
    assert load_rows([path]) == [{"text": "hi", "intent": "chat"}, {"text": "lights off", "intent": "device.control"}]
    path.write_text('{"text": "hi"}\n{oops\n')
    with pytest.raises(ValueError, match=r"rows\.jsonl:2"):
        load_rows([path])


# An intent the product does not have: rows from templates, none of them in the dataset.
ITEMS_EN = ["milk", "eggs", "bread", "coffee beans", "apples", "rice", "olive oil", "toilet paper", "butter", "yogurt"]
ITEMS_ZH = ["牛奶", "鸡蛋", "面包", "咖啡豆", "苹果", "大米", "橄榄油", "卫生纸", "黄油", "酸奶"]
TEMPLATES_EN = ["add {} to my shopping list", "put {} on the grocery list", "we need {}, add it to the list"]
TEMPLATES_ZH = ["把{}加到购物清单", "购物清单里加上{}", "买菜清单添加{}"]


def _shopping_rows(items_en: list[str], items_zh: list[str]) -> list[dict[str, Any]]:
    texts = [t.format(item) for item in items_en for t in TEMPLATES_EN]
    texts += [t.format(item) for item in items_zh for t in TEMPLATES_ZH]
    return [{"text": text, "intent": "shopping.add", "split": "train"} for text in texts]


def test_an_intent_added_in_configuration(tmp_path: Path) -> None:
    raw = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    raw["intents"]["shopping.add"] = {
        "description": "adds an item to the shopping list",
        "cues": {"shopping-list": [r"\b(shopping|grocery) list\b", "购物清单|买菜清单"]},
    }
    config_path = tmp_path / "intents.yaml"
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    data_path = tmp_path / "utterances.jsonl"
    rows = TRAIN + _shopping_rows(ITEMS_EN[:7], ITEMS_ZH[:7])
    data_path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")

    classifier = IntentClassifier.from_dataset([data_path], config=ClassifierConfig.load(config_path))

    assert "shopping.add" in classifier.intents
    unseen = _shopping_rows(ITEMS_EN[7:], ITEMS_ZH[7:])
    assert all(classifier.predict(row["text"]).intent == "shopping.add" for row in unseen)
    predictions = classifier.predict_many([row["text"] for row in DEV])
    assert sum(p.intent == row["intent"] for p, row in zip(predictions, DEV, strict=True)) / len(DEV) >= 0.9


def test_a_label_missing_from_the_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match=r"shopping\.add"):
        IntentClassifier.train(TRAIN + _shopping_rows(ITEMS_EN, ITEMS_ZH))


def test_without_an_intent_list_any_label_is_learned() -> None:
    config = replace(ClassifierConfig.load(), intents=())
    classifier = IntentClassifier.train(TRAIN + _shopping_rows(ITEMS_EN[:7], ITEMS_ZH[:7]), config=config)
    assert classifier.predict("add butter to my shopping list").intent == "shopping.add"


def test_a_bad_cue_pattern_is_named() -> None:
    config = ClassifierConfig.load()
    broken = replace(config, cues={**config.cues, "help:broken": ("(unclosed",)})
    with pytest.raises(ValueError, match="help:broken"):
        IntentClassifier.train(TRAIN, config=broken)


def test_a_cue_counts_only_where_training_rows_attest_it() -> None:
    # "zz-dev-word" was written while looking at held-out rows: no training row has it, so it
    # must not switch the group on (it would lift a held-out figure for free).
    config = replace(ClassifierConfig(), cues={"greeting": ("hello|zz-dev-word", "salut")})
    rows = [{"text": "hello there", "intent": "chat"}, {"text": "turn on the light", "intent": "device.control"}]
    classifier = IntentClassifier.train(rows, config=config)
    assert classifier.cues.active("hello") == ["greeting"]
    assert classifier.cues.active("zz-dev-word") == []
    assert classifier.cues.active("salut") == []  # a whole pattern without a training match too


@pytest.mark.parametrize(
    ("pattern", "parts"),
    [
        ("a|b(c|d)", ["a", "b(c|d)"]),
        (r"[|]x|y", ["[|]x", "y"]),
        (r"[]|]|z", ["[]|]", "z"]),
        (r"\|a|b", [r"\|a", "b"]),
        ("(?<![入出])[门門]|锁", ["(?<![入出])[门門]", "锁"]),
    ],
)
def test_alternatives(pattern: str, parts: list[str]) -> None:
    assert alternatives(pattern) == parts


def test_public_rows_count_as_much_as_the_configuration_says() -> None:
    # Public rows that call "add X to my shopping list" chat, against the own rows' label.
    public = [{**row, "intent": "chat"} for row in _shopping_rows(ITEMS_EN, ITEMS_ZH)]
    own = TRAIN + _shopping_rows(ITEMS_EN[:3], ITEMS_ZH[:3])
    probability = {}
    for weight in (1.0, 0.05):
        config = replace(ClassifierConfig.load(), intents=(), public_weight=weight, temperature=1.0)
        classifier = IntentClassifier.train(own, config=config, public=public)
        row = classifier.probabilities([f"add {ITEMS_EN[-1]} to my shopping list"])[0]
        probability[weight] = row[classifier.intents.index("shopping.add")]
    assert probability[0.05] > 0.5 > probability[1.0]


def test_the_temperature_softens_the_probabilities_but_never_changes_the_choice(classifier: IntentClassifier) -> None:
    sure = copy.copy(classifier)
    sure.config = replace(classifier.config, temperature=1.0)
    texts = [row["text"] for row in DEV]
    hot, cold = classifier.probabilities(texts), sure.probabilities(texts)
    assert classifier.config.temperature > 1.0
    assert (hot.argmax(axis=1) == cold.argmax(axis=1)).all()
    assert (hot.max(axis=1) <= cold.max(axis=1) + 1e-12).all() and (hot.max(axis=1) < cold.max(axis=1)).any()


def test_probabilities_at_temperature_one_are_the_models_own(classifier: IntentClassifier) -> None:
    """The classifier scores with its own copy of the weights (row-ordered, for speed): the
    result must be scikit-learn's predict_proba, with many intents and with two."""
    texts = [row["text"] for row in DEV]
    sure = copy.copy(classifier)
    sure.config = replace(classifier.config, temperature=1.0)
    features = sparse.hstack(
        [sure.char.transform(texts), sure.word.transform(texts), sure.cues.transform(texts)]
    ).tocsr()
    assert np.allclose(sure._probabilities(texts), sure.model.predict_proba(features))
    two = [row for row in TRAIN if row["intent"] in {"chat", "reminder.create"}]
    config = replace(ClassifierConfig.load(), intents=(), commands={}, temperature=1.0)
    pair = IntentClassifier.train(two, config=config)
    assert pair.intents == ("chat", "reminder.create")
    features = sparse.hstack(
        [pair.char.transform(texts), pair.word.transform(texts), pair.cues.transform(texts)]
    ).tocsr()
    assert np.allclose(pair._probabilities(texts), pair.model.predict_proba(features))


def test_a_prediction_names_the_runner_up(classifier: IntentClassifier) -> None:
    prediction = classifier.predict("remind me to check the oven light")
    assert prediction.runner_up and prediction.runner_up != prediction.intent
    assert 0 < prediction.runner_up_confidence <= prediction.confidence
    assert classifier.predict("/help").runner_up == ""  # a rule decided
