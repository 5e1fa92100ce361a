"""``python -m switchboard.lag_exporter``: read every matching consumer group's lag from
Kafka every ``SB_LAG_INTERVAL_S`` and serve it on ``SB_LAG_METRICS_PORT`` (/metrics)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys

from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard.common import lifecycle
from switchboard.common.config import ServiceSettings
from switchboard.common.kafka.security import connection_kwargs
from switchboard.common.metrics import MetricsServer
from switchboard.lag_exporter.lag import LagCollector, read

logger = logging.getLogger(__name__)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SB_LAG_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "lag-exporter"
    metrics_port: int = 18160
    # How often the offsets are read from Kafka.
    interval_s: float = Field(default=5.0, gt=0)
    # The consumer groups reported (a regular expression matching the whole group id).
    groups: str = ".*"


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    collector = LagCollector()
    REGISTRY.register(collector)
    metrics = MetricsServer(settings.metrics_host, settings.metrics_port)
    metrics.start()
    connection = {"bootstrap_servers": settings.kafka.bootstrap_servers, **connection_kwargs(settings.kafka)}
    groups = re.compile(settings.groups)
    try:
        while not stop.is_set():
            try:
                collector.snapshot = await read(connection, groups)
            except (KafkaError, OSError, TimeoutError) as exc:  # Kafka away: serve the last snapshot (its age grows)
                logger.warning("reading the consumer groups failed", extra={"error": repr(exc)})
            await lifecycle.sleep_unless_stopped(stop, settings.interval_s)
    finally:
        metrics.stop()
        REGISTRY.unregister(collector)


def main() -> int:
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
