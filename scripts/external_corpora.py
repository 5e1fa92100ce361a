"""The public corpora of the intent parser's external evaluation: where each is mirrored, how
its test rows are read, and how its labels map to the parser's (scripts/intent_external.py
runs the evaluation; docs/external-evaluation.md explains the choices)."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    repo: str  # owner/name on GitHub
    commit: str  # the commit the figures in docs/external-evaluation.md come from
    licence: str


SOURCES = {
    "clinc": Source("clinc/oos-eval", "828f8093932c8fe6ca7936c3d2e52903b1c523de", "CC BY 3.0"),
    "hwu": Source("xliuhw/NLU-Evaluation-Data", "f6071b496b17d71e6eb43f543af0707f4ff30557", "CC BY 4.0"),
    "ha": Source("home-assistant/intents", "aa550032a57b67c13995c032220bc4101521ead2", "CC BY 4.0"),
    "cais": Source("Adaxry/CM-Net", "830ee484d6d33bd2760308a7a823a7f52291b0c5", "none stated"),
    "duckling": Source("facebook/duckling", "2c226585af5b9f4985d9c7151d7191603bb2add7", "BSD 3-clause"),
}


# ---------------------------------------------------------------------------------------------
# Label mapping. Decided from each corpus's label names and definitions (and, where a name was
# unclear, from its TRAIN rows) against services/intent-parser/data/README.md, never from what
# the parser does. A label that mixes two of our intents, or fits none of them and is not plainly
# "anything else", is EXCLUDED (its rows are not scored) with the reason below.
# Every label not listed maps to chat.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mapping:
    to: dict[str, str]
    excluded: dict[str, str] = field(default_factory=dict)

    def __call__(self, label: str) -> str | None:
        return None if label in self.excluded else self.to.get(label, "chat")


LISTS = "to-do and shopping lists: neither a reminder (README: asks to be reminded) nor plain chat"
CURRENCY = "currency conversion: README's units.convert names physical units only"
OWN_VOLUME = "the assistant's own loudness: no device named, not plainly chat"
MEDIA = "media transport (pause, next, play a title on a player): no action for it in README"

HWU = Mapping(
    to={
        "alarm_set": "reminder.create",  # README: an alarm or a wake-up is a reminder
        "alarm_query": "reminder.list",
        "alarm_remove": "reminder.cancel",
        "calendar_set": "reminder.create",
        "calendar_query": "reminder.list",
        "calendar_remove": "reminder.cancel",
        "iot_hue_lighton": "device.control",
        "iot_hue_lightoff": "device.control",
        "iot_hue_lightdim": "device.control",
        "iot_hue_lightup": "device.control",
        "iot_hue_lightchange": "device.control",
        "iot_wemo_on": "device.control",
        "iot_wemo_off": "device.control",
        "iot_cleaning": "device.control",
        "iot_coffee": "device.control",
    },
    excluded={
        "audio_volume_up": OWN_VOLUME,
        "audio_volume_down": OWN_VOLUME,
        "audio_volume_mute": OWN_VOLUME,
        "lists_createoradd": LISTS,
        "lists_query": LISTS,
        "lists_remove": LISTS,
        "qa_currency": CURRENCY,
    },
)

CLINC = Mapping(
    to={
        "alarm": "reminder.create",
        "timer": "reminder.create",
        "reminder_update": "reminder.create",  # its rows ask to set a reminder
        "reminder": "reminder.list",  # its rows ask to read the reminder list
        "calendar": "reminder.list",
        "meeting_schedule": "reminder.list",
        "measurement_conversion": "units.convert",
        "what_can_i_ask_you": "help",
    },
    excluded={
        "calendar_update": "mixes adding and removing calendar entries",
        "schedule_meeting": "mixes booking meeting rooms and how-to questions",
        "smart_home": "mixes device commands and device state questions",
        "change_volume": OWN_VOLUME,
        "todo_list": LISTS,
        "todo_list_update": LISTS,
        "shopping_list": LISTS,
        "shopping_list_update": LISTS,
        "exchange_rate": CURRENCY,
        "order_status": "a delivery question: a ticket (README category delivery) or chat",
        **dict.fromkeys(
            ("account_blocked", "report_fraud", "damaged_card", "report_lost_card", "card_declined", "lost_luggage"),
            "a problem with a third party (bank, airline): a ticket or chat",
        ),
    },
)

HOME_ASSISTANT = Mapping(
    to={
        **dict.fromkeys(
            (
                "HassTurnOn",
                "HassTurnOff",
                "HassLightSet",
                "HassSetPosition",
                "HassClimateSetTemperature",
                "HassSetVolume",
                "HassVacuumStart",
                "HassVacuumReturnToBase",
            ),
            "device.control",
        ),
        "HassGetState": "device.query",
        "HassClimateGetTemperature": "device.query",
        "HassStartTimer": "reminder.create",
        "HassCancelTimer": "reminder.cancel",
        "HassCancelAllTimers": "reminder.cancel",
        "HassTimerStatus": "reminder.list",
    },
    excluded={
        "HassGetState(person)": "where a person is: not a device",
        "HassTurnOn(script)": "runs an automation script: not a device",
        **dict.fromkeys(
            ("HassIncreaseTimer", "HassDecreaseTimer", "HassPauseTimer", "HassUnpauseTimer"),
            "changes a running timer: no intent for it",
        ),
        **dict.fromkeys(
            ("HassMediaPause", "HassMediaUnpause", "HassMediaNext", "HassMediaPrevious", "HassMediaSearchAndPlay"),
            MEDIA,
        ),
        "HassRespond": "mixes greetings and 'what can I say' (chat and help)",
        **dict.fromkeys(
            ("HassShoppingListAddItem", "HassShoppingListCompleteItem", "HassListAddItem", "HassListCompleteItem"),
            LISTS,
        ),
    },
)

CAIS = Mapping(
    to={"Remind": "reminder.create"},  # alarms, wake-ups and reminders
    excluded={"ControlSystem": "mixes the speaker's volume, playback and shut-down"},
)


# ---------------------------------------------------------------------------------------------
# Mirrors
# ---------------------------------------------------------------------------------------------
class MirrorMissing(Exception):
    """A corpus's repository is not mirrored; the message says what to fetch."""


class Mirror:
    """Read-only access to one repository mirrored as a git directory under ``root``."""

    def __init__(self, root: Path, source: Source) -> None:
        base = root / source.repo.replace("/", "+") / "repo"
        self.git_dir = base / ".git" if (base / ".git").is_dir() else base
        self.source = source
        if not (self.git_dir / "HEAD").is_file():
            raise MirrorMissing(
                f"{source.repo} is not mirrored under {root}: fetch it with the session's fetch tool "
                f"(fetch github:{source.repo}), then run again"
            )

    def _git(self, *args: str) -> str:
        git = shutil.which("git")
        if git is None:
            raise MirrorMissing("git is not installed: it is needed to read the mirrors")
        # Fixed argv, no shell; the only inputs are paths this module names.
        done = subprocess.run([git, f"--git-dir={self.git_dir}", *args], capture_output=True, check=False)  # noqa: S603
        if done.returncode:
            raise MirrorMissing(f"{self.source.repo}: git {' '.join(args)} failed: {done.stderr.decode()[:200]}")
        return done.stdout.decode("utf-8")

    def head(self) -> str:
        return self._git("rev-parse", "HEAD").strip()

    def read(self, path: str) -> str:
        text = self._git("show", f"HEAD:{path}")
        if text.startswith("version https://git-lfs"):
            raise MirrorMissing(f"{self.source.repo}: {path} is a Git LFS pointer in the mirror, not the data")
        return text

    def files(self, folder: str) -> list[str]:
        return self._git("ls-tree", "-r", "--name-only", "HEAD", folder.rstrip("/") + "/").split("\n")[:-1]


# ---------------------------------------------------------------------------------------------
# Loaders: each returns the corpus's test rows as (text, language, source label)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    text: str
    lang: str
    source_label: str
    intent: str  # our label

    @property
    def tz(self) -> str:
        return "Asia/Shanghai" if self.lang == "zh" else "America/New_York"


HWU_TEST_FOLD = (
    "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1/testset/csv"
)


def load_clinc(mirror: Mirror) -> list[tuple[str, str, str]]:
    data = json.loads(mirror.read("data/data_full.json"))
    return [(text, "en", label) for text, label in data["test"]] + [(t, "en", "oos") for t, _ in data["oos_test"]]


def load_hwu(mirror: Mirror) -> list[tuple[str, str, str]]:
    out = []
    for path in mirror.files(HWU_TEST_FOLD):
        for row in csv.DictReader(io.StringIO(mirror.read(path)), delimiter=";"):
            out.append((row["answer_from_anno"].strip(), "en", f"{row['scenario']}_{row['intent']}"))
    return out


def ha_label(test: dict[str, Any], path: str) -> str:
    """The test's intent name (a test in tests/<lang>/<Intent>/ names it by its folder), qualified
    where the mapping depends on the entity's domain."""
    folders = path.split("/")
    intent = test.get("intent") or {"name": folders[-2], "slots": test.get("slots")}
    domain = (intent.get("slots") or {}).get("domain")
    if not isinstance(domain, str):
        domain = folders[-1].split("_Hass", 1)[0] if "_Hass" in folders[-1] else ""
    qualified = f"{intent['name']}({domain})"
    return qualified if qualified in HOME_ASSISTANT.excluded else str(intent["name"])


def load_home_assistant(mirror: Mirror) -> list[tuple[str, str, str]]:
    import yaml

    out = []
    for folder, lang in (("tests/en", "en"), ("tests/zh-cn", "zh")):
        for path in mirror.files(folder):
            if not path.endswith(".yaml") or path.rsplit("/", 1)[-1].startswith("_"):
                continue
            for document in yaml.safe_load_all(mirror.read(path)):
                for test in (document or {}).get("tests", []):
                    label = ha_label(test, path)
                    out += [(str(sentence), lang, label) for sentence in test["sentences"]]
    return out


def load_cais(mirror: Mirror) -> list[tuple[str, str, str]]:
    blocks = mirror.read("CAIS/test/ch.test").strip().split("\n\n")
    labels = mirror.read("CAIS/test/ch.test.intent").split()
    if len(blocks) != len(labels):
        raise ValueError(f"CAIS test: {len(blocks)} sentences but {len(labels)} intents")
    # One character and its slot tag per line; the sentence is the characters joined.
    texts = ["".join(line.split(" ", 1)[0] for line in block.split("\n")) for block in blocks]
    return [(text, "zh", label) for text, label in zip(texts, labels, strict=True)]


@dataclass(frozen=True)
class Corpus:
    name: str
    source: str  # key of SOURCES
    split: str
    load: Callable[[Mirror], list[tuple[str, str, str]]]
    mapping: Mapping


CORPORA = (
    Corpus("CLINC150", "clinc", "test + oos_test of data_full.json", load_clinc, CLINC),
    Corpus("HWU64", "hwu", "KFold_1 testset (cross-validation fold 1, held out)", load_hwu, HWU),
    Corpus(
        "Home Assistant",
        "ha",
        "tests/en and tests/zh-cn (not the sentences/ templates)",
        load_home_assistant,
        HOME_ASSISTANT,
    ),
    Corpus("CAIS", "cais", "CAIS/test", load_cais, CAIS),
)


@dataclass
class Selection:
    rows: list[Row]
    population: int  # test rows in the corpus
    excluded: Counter[str]  # source label -> rows not scored (unmappable label)
    sampled_out: int


def mapped(corpus: Corpus, raw: Iterable[tuple[str, str, str]], max_rows: int, seed: int) -> Selection:
    """Map the rows' labels, drop unmappable ones (and repeats) and, past ``max_rows``, keep every
    row whose label is not chat plus a seeded random sample of the chat rows."""
    raw = list(raw)
    excluded: Counter[str] = Counter()
    rows, seen = [], set()
    for text, lang, label in raw:
        ours = corpus.mapping(label)
        if ours is None:
            excluded[label] += 1
        elif not text or (text, lang, label) in seen:  # a row a corpus repeats counts once
            excluded["(empty or repeated row)"] += 1
        else:
            seen.add((text, lang, label))
            rows.append(Row(text, lang, label, ours))
    kept = sample(rows, max_rows, seed)
    return Selection(kept, len(raw), excluded, len(rows) - len(kept))


def sample(rows: list[Row], max_rows: int, seed: int) -> list[Row]:
    if max_rows <= 0 or len(rows) <= max_rows:
        return rows
    keep = [i for i, row in enumerate(rows) if row.intent != "chat"]
    chat = [i for i, row in enumerate(rows) if row.intent == "chat"]
    rng = random.Random(seed)  # noqa: S311 -- a reproducible sample, not a secret
    chosen = rng.sample(keep, max_rows) if len(keep) >= max_rows else keep + rng.sample(chat, max_rows - len(keep))
    return [rows[i] for i in sorted(chosen)]
