"""Settings of the intent parser (environment prefix ``SB_PARSER_``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from switchboard.common.config import ServiceSettings

# services/intent-parser/ in a checkout (the image sets SB_PARSER_CONFIG_DIR and _DATASET_DIR).
_SERVICE_DIR = Path(__file__).resolve().parents[3]


class Settings(ServiceSettings):
    """Intent parser settings."""

    model_config = SettingsConfigDict(env_prefix="SB_PARSER_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "intent-parser"
    # Faust app id, also the consumer group id and the prefix of its tables' changelog topics.
    app_id: str = "intent-parser"
    # Faust keeps its local state here; the changelog topics are the source of truth, so it
    # can be an emptyDir.
    data_dir: Path = Path(tempfile.gettempdir()) / "switchboard-intent-parser"
    health_port: int = 18130
    metrics_port: int = 18131
    # A stop (SIGTERM) still running after this long ends the process anyway: what was
    # handled after the last offset commit is handled again by the partition's next owner
    # (processing is at least once). Below the pod's terminationGracePeriodSeconds (30 s).
    shutdown_timeout_s: float = Field(default=20.0, gt=0)

    # The parser's own topics, "<prefix>.users.v1" (inbound re-keyed by channel identity,
    # where identity links live), "<prefix>.people.v1" (re-keyed by person: one person's
    # limits and context on one partition whatever channel they write from) and
    # "<prefix>.links.v1" (link codes keyed by code), and its tables' changelogs,
    # "<prefix>.<table>.changelog.v1"; all declared in infra/kafka/topics.yaml.
    topic_prefix: str = "switchboard.parser"
    # lexicon.txt, injection.yaml, entities.yaml, routing.yaml, replies.yaml.
    config_dir: Path = _SERVICE_DIR / "config"
    # The labelled utterances the classifier is trained on at start-up.
    dataset_dir: Path = _SERVICE_DIR / "data"
    # Splits trained on: production learns from every labelled row; the benchmark from
    # "train" only, and measures on "dev".
    train_splits: tuple[str, ...] = ("train", "dev")
    # Where a replica keeps the classifier it trained, by a fingerprint of its inputs, and
    # the next replica loads it: about 1 s instead of 12 s of training (model_store.py). A
    # volume the replicas share, or a directory baked into the image; none: always train.
    model_cache_dir: Path | None = None

    # Messages per person per window (tumbling: calendar minutes by default), on all replicas
    # together; 0: no limit. The gateway limits each channel identity too; this one holds for
    # a person across linked identities.
    rate_limit: int = Field(default=30, ge=0)
    rate_window_s: int = Field(default=60, ge=1)
    # A channel message id seen again within this window (and up to twice it) is dropped.
    dedupe_window_s: int = 3600
    # Turns of conversation kept per person and sent with each intent, and the longest
    # text kept of one turn.
    context_turns: int = 10
    context_turn_chars: int = 2000
    # Longest text handled; longer text (never from the gateway, which caps it lower) is trimmed.
    max_text_chars: int = 8000
    # Zone used for time expressions when neither the channel nor the user gave one.
    default_time_zone: str = "UTC"
    # How long a "/link" code may be used from the other account.
    link_code_ttl_s: int = 600
    # Claims of codes a person may make an hour, right or wrong; more are refused.
    link_claims_per_hour: int = Field(default=5, ge=1)
    # A replica that stops heartbeating (killed, frozen) loses its partitions after this
    # long, and another replica takes them over. Faust's default is 60 s, which left a
    # killed replica's conversations unanswered for over a minute (tests/chaos); 10 s is
    # Kafka's own default, the one the other services' consumers use.
    session_timeout_s: float = Field(default=10.0, ge=6.0)

    def own_topic(self, name: str) -> str:
        """Name of the parser's own topic ``name`` ("users", "people" or "links")."""
        return f"{self.topic_prefix}.{name}.v1"

    def changelog_topic(self, table: str) -> str:
        """Name of the changelog topic of ``table``."""
        return f"{self.topic_prefix}.{table}.changelog.v1"

    @field_validator("dedupe_window_s", "context_turns", "link_code_ttl_s")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value
