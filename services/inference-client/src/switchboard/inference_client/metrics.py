"""Prometheus metrics of the inference client (served on SB_INFERENCE_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ANSWERS = Counter(
    "switchboard_inference_answers_total", "Requests answered, by target and finish reason.", ["target", "finish"]
)
TARGET_FAILURES = Counter(
    "switchboard_inference_target_failures_total", "Calls to a target that failed or were skipped.", ["target", "why"]
)
BREAKER_OPEN = Gauge("switchboard_inference_breaker_open", "1 while a target's circuit breaker is open.", ["target"])
CACHE = Counter("switchboard_inference_cache_total", "Response cache lookups.", ["result"])
BLOCKED = Counter("switchboard_inference_output_blocked_total", "Answers screened out, by rule.", ["rule"])
FIRST_PIECE = Histogram(
    "switchboard_inference_first_piece_seconds",
    "From the call to a target to its first piece of text.",
    ["target"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MODEL_LOAD = Histogram(
    "switchboard_inference_model_load_seconds",
    "How long asking Triton to load a model took, failed loads included.",
    ["model"],
    buckets=(1, 5, 10, 30, 60, 120, 300),
)
