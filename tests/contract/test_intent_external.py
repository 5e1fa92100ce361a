"""The external evaluation's own logic, on tiny samples written here (no mirror, no corpus row):
the Duckling corpus reader, the selection of time expressions, the label mapping, the sampling
and the refusal to run without the mirrors."""

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import external_corpora as corpora
import external_times as times
import intent_external as ie

CORPUS = """
module Duckling.Time.XX.Corpus (corpus) where

latentCorpus = (testContext, testOptions, xs)
  where
    xs = examples (datetime (2013, 2, 12, 7, 0, 0) Hour) [ "latent seven" ]

allExamples :: [Example]
allExamples = concat
  [ examples (datetime (2013, 2, 12, 18, 45, 0) Minute)
             [ "quarter to seven tonight"
             , "6:45 \\"pm\\""   -- a comment, then an escaped quote above
             ]
  , examples (datetimeInterval ((2013, 2, 12, 18, 0, 0), (2013, 2, 13, 0, 0, 0)) Hour)
             [ "this (late) evening"
             ]
  , examples (datetimeHoliday (2013, 12, 25, 0, 0, 0) Day "Christmas")
             [ "xmas"
             ]
  , examples (datetime (2013, 2, 14, 0, 0, 0) Day)
             [ "thursday" ]
  ]
"""


def example(text: str, value: tuple[int, ...], grain: str = "Minute", lang: str = "en") -> times.TimeExample:
    return times.TimeExample(text, lang, "datetime", value, grain)


def test_reads_only_all_examples_with_their_values() -> None:
    examples = times.duckling_examples(CORPUS, "en")
    assert [e.text for e in examples] == [
        "quarter to seven tonight",
        '6:45 "pm"',
        "this (late) evening",
        "xmas",
        "thursday",
    ]
    assert examples[0].value == (2013, 2, 12, 18, 45, 0)
    assert examples[0].grain == "Minute"
    assert [e.kind for e in examples[2:4]] == ["datetimeInterval", "datetimeHoliday"]
    assert examples[2].value is None


def test_selects_future_instants_of_an_hour_or_finer() -> None:
    reasons = [times.select(e)[1] for e in times.duckling_examples(CORPUS, "en")]
    assert reasons == [
        "selected",
        "selected",
        "an interval or open interval",
        "a holiday (a whole day)",
        "grain coarser than an hour",
    ]
    gold, _ = times.select(example("quarter to seven tonight", (2013, 2, 12, 18, 45, 0)))
    assert gold == datetime(2013, 2, 12, 20, 45, tzinfo=ZoneInfo("UTC"))  # UTC-02:00
    assert times.select(example("an hour ago", (2013, 2, 12, 3, 30, 0)))[1] == "in the past (the product asks instead)"
    assert times.select(example("right now", (2013, 2, 12, 4, 30, 0), "Second"))[1] == "the reference time itself (now)"
    assert times.select(example("in 5 seconds", (2013, 2, 12, 4, 30, 5), "Second"))[1] == "precise to the second"
    assert times.select(example("in 9 minutes", (2013, 2, 12, 4, 39, 0), "Second"))[1] == "selected"
    assert times.select(example("下午五點", (2013, 2, 12, 17, 0, 0), lang="zh"))[1] == "Cantonese or traditional script"


def test_flags_where_the_product_conventions_differ() -> None:
    def why(text: str, value: tuple[int, ...], grain: str = "Hour", lang: str = "en") -> str | None:
        e = example(text, value, grain, lang)
        gold, _ = times.select(e)
        assert gold is not None
        return times.divergence(e, gold)

    assert why("at 6", (2013, 2, 12, 6, 0, 0)) == "bare hour"
    assert why("at 6pm", (2013, 2, 12, 18, 0, 0)) is None
    assert why("at 6 in the morning", (2013, 2, 13, 6, 0, 0)) is None
    assert why("in 2 minutes", (2013, 2, 12, 4, 32, 0), "Second") is None
    assert why("in 3 days", (2013, 2, 15, 4, 0, 0)) == "relative days"
    assert why("in 3 days at 6pm", (2013, 2, 15, 18, 0, 0)) is None
    assert why("in 2 years", (2015, 2, 1, 0, 0, 0), "Hour") == "relative months"
    assert why("tonight at 4", (2013, 2, 12, 16, 0, 0)) == "part of day vs hour"
    assert why("9:30pm MDT", (2013, 2, 13, 1, 30, 0), "Minute") == "seasonal zone"
    assert why("五点", (2013, 2, 12, 5, 0, 0), lang="zh") == "bare hour"
    assert why("下午五点", (2013, 2, 12, 17, 0, 0), lang="zh") is None


def test_label_mapping() -> None:
    assert corpora.HWU("alarm_set") == "reminder.create"
    assert corpora.HWU("calendar_remove") == "reminder.cancel"
    assert corpora.HWU("iot_hue_lightoff") == "device.control"
    assert corpora.HWU("weather_query") == "chat"
    assert corpora.HWU("lists_query") is None
    assert corpora.CLINC("measurement_conversion") == "units.convert"
    assert corpora.CLINC("what_can_i_ask_you") == "help"
    assert corpora.CLINC("oos") == "chat"
    assert corpora.CLINC("smart_home") is None
    assert corpora.CAIS("Remind") == "reminder.create"
    assert corpora.CAIS("ControlSystem") is None
    for mapping in (corpora.HWU, corpora.CLINC, corpora.HOME_ASSISTANT, corpora.CAIS):
        assert set(mapping.to.values()) <= set(ie.LABELS)
        assert not set(mapping.to) & set(mapping.excluded)


def test_home_assistant_labels_from_test_or_folder() -> None:
    person = {"intent": {"name": "HassGetState", "slots": {"domain": "person"}}}
    assert corpora.HOME_ASSISTANT(corpora.ha_label(person, "tests/xx/person_HassGetState.yaml")) is None
    by_file = {"intent": {"name": "HassTurnOn"}}
    assert corpora.ha_label(by_file, "tests/xx/script_HassTurnOn.yaml") == "HassTurnOn(script)"
    assert corpora.HOME_ASSISTANT(corpora.ha_label(by_file, "tests/xx/light_HassTurnOn.yaml")) == "device.control"
    by_folder = {"slots": {"name": "Hall Thermometer"}}
    assert corpora.HOME_ASSISTANT(corpora.ha_label(by_folder, "tests/xx/HassGetState/name_only.yaml")) == "device.query"


def test_sample_keeps_every_non_chat_row_and_is_seeded() -> None:
    raw = [(f"talk {i}", "en", "small_talk") for i in range(50)]
    raw += [(f"alarm {i}", "en", "alarm") for i in range(5)]
    raw += [("talk 1", "en", "small_talk"), ("volume", "en", "change_volume")]
    corpus = corpora.Corpus("x", "clinc", "test", lambda mirror: raw, corpora.CLINC)
    first = corpora.mapped(corpus, raw, max_rows=20, seed=3)
    assert len(first.rows) == 20
    assert sum(row.intent == "reminder.create" for row in first.rows) == 5
    assert first.population == 57
    assert first.excluded == {"change_volume": 1, "(empty or repeated row)": 1}
    assert first.sampled_out == 55 - 20
    assert first.rows == corpora.mapped(corpus, raw, max_rows=20, seed=3).rows
    assert len(corpora.mapped(corpus, raw, max_rows=0, seed=3).rows) == 55


def test_missing_mirrors_are_named_with_what_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(corpora.MirrorMissing) as missing:
        ie.open_mirrors(tmp_path)
    for source in corpora.SOURCES.values():
        assert f"fetch github:{source.repo}" in str(missing.value)
    assert ie.main(["--mirror", str(tmp_path)]) == 2


def test_bench_figures_shape() -> None:
    f = {"rows": 10, "accuracy": 0.9, "macro_f1": 0.8, "crashes": 0, "per_intent": {}}
    figures = {
        "intents": {"HWU64": {"en": f}, "all corpora": {"en": f, "zh": f}},
        "times": {"en": {"exact": 7, "selected": 9}},
    }
    rows = ie.bench_figures(figures)
    assert rows["external: all corpora"]["en"] == {"rows": 10, "accuracy": 0.9, "macro_f1": 0.8, "time": (7, 9)}
    assert rows["external: all corpora"]["zh"]["time"] == (0, 0)
    assert rows["external: HWU64"]["en"]["time"] == (0, 0)
