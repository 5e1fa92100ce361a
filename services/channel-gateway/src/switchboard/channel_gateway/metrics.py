"""Prometheus metrics of the gateway's WebSocket chat (served on SB_GATEWAY_METRICS_PORT);
its HTTP requests are measured by prometheus-fastapi-instrumentator (api.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

WEBSOCKETS_OPEN = Gauge("switchboard_gateway_websockets_open", "Authenticated WebSocket chat sessions open now.")
WEBSOCKET_FRAMES = Counter(
    "switchboard_gateway_websocket_frames_total", "Frames received from WebSocket clients, by type.", ["type"]
)
# Frame types counted by name; anything else counts as "other" (bounded label values).
FRAME_TYPES = frozenset({"conversation", "message", "resume", "auth", "ping", "pong"})
