"""The one retry policy of the consumer's handlers.

A failing handler call is retried with exponential backoff up to a number of attempts,
after which the caller dead-letters what it was handling. A failure of a ``transient``
type (a dependency away, e.g. PostgreSQL restarting) says nothing about the record: it is
waited out for as long as it lasts and never counts as an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from switchboard.common import backoff
from switchboard.common.config import KafkaSettings
from switchboard.common.metrics import HANDLER_SECONDS

_T = TypeVar("_T")
logger = logging.getLogger(__name__)


class RetryPolicy:
    """Retries of handler calls: ``settings.handler_attempts`` and ``handler_backoff_s``,
    and the exception types that are waited out instead of counted."""

    def __init__(self, settings: KafkaSettings, transient: tuple[type[BaseException], ...] = ()) -> None:
        self._settings = settings
        self._transient = transient

    @property
    def attempts(self) -> int:
        """A call's attempts, unless told otherwise."""
        return max(1, self._settings.handler_attempts)

    async def run(
        self, call: Callable[[], Awaitable[_T]], attempts: int, timed_as: str, context: dict[str, Any]
    ) -> tuple[bool, _T | None, BaseException | None]:
        """(True, result, None) once ``call`` succeeds; (False, None, the last error) after
        ``attempts`` failures, with exponential backoff in between. An error of a
        ``transient`` type is waited out and not counted. Each call's duration is observed
        as ``timed_as``; ``context`` goes into the log lines."""
        attempt = outage = 0
        failure: BaseException | None = None
        while attempt < attempts:
            attempt += 1
            started = time.perf_counter()
            try:
                return True, await call(), None
            except self._transient as exc:
                outage += 1
                attempt -= 1
                await self._wait_out(exc, outage)
            except Exception as exc:  # noqa: BLE001 -- retried, then the caller dead-letters the record(s)
                failure = exc
                if attempt < attempts:
                    retry = {**context, "attempt": attempt, "error": repr(exc)}
                    logger.warning("handler failed, retrying", extra=retry)
                    await asyncio.sleep(backoff.delay(attempt, self._settings.handler_backoff_s))
            finally:
                HANDLER_SECONDS.labels(topic=timed_as).observe(time.perf_counter() - started)
        logger.warning("handler failed on every attempt", extra={**context, "error": repr(failure)}, exc_info=failure)
        return False, None, failure

    async def _wait_out(self, exc: BaseException, outage: int) -> None:
        """Back off while a dependency is away (exponential, at most 10 s between tries)."""
        delay = backoff.delay(outage, self._settings.handler_backoff_s, cap_s=10.0)
        logger.warning("a dependency is unavailable; retrying", extra={"error": repr(exc), "retry_in_s": delay})
        await asyncio.sleep(delay)
