"""The declarative topic list (infra/kafka/topics.yaml), loaded for one environment.

Shared by scripts/create_topics.py (local broker) and scripts/render_topics.py
(Strimzi KafkaTopic resources for Kubernetes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TOPICS_FILE = Path(__file__).resolve().parent.parent / "infra" / "kafka" / "topics.yaml"
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def retention_ms(value: Any) -> str:
    """'7d' -> '604800000'; -1 (keep forever) stays -1."""
    if value in (-1, "-1"):
        return "-1"
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"retention {value!r} is not a duration like 7d, 12h or 500ms")
    return str(int(match.group(1)) * _UNIT_MS[match.group(2)])


def load_specs(environment: str, path: Path = TOPICS_FILE) -> list[TopicSpec]:
    """Topic specs of ``environment`` from the declarative list at ``path``."""
    doc = yaml.safe_load(path.read_text())
    if environment not in doc["environments"]:
        raise SystemExit(f"unknown environment {environment!r}; known: {', '.join(doc['environments'])}")
    env = doc["environments"][environment]
    specs = []
    for topic in doc["topics"]:
        merged = {**doc["defaults"], **env, **topic}
        specs.append(
            TopicSpec(
                name=merged["name"],
                description=merged.get("description", ""),
                partitions=int(merged["partitions"]),
                replication_factor=int(merged["replication_factor"]),
                configs={
                    "retention.ms": retention_ms(merged["retention"]),
                    "cleanup.policy": str(merged["cleanup_policy"]),
                    "min.insync.replicas": str(merged["min_insync_replicas"]),
                },
            )
        )
    return specs
