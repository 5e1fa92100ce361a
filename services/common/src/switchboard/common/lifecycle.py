"""Process lifecycle: SIGTERM/SIGINT set a stop event; the service drains and exits.

Typical ``__main__``::

    raise SystemExit(lifecycle.main(Settings, app.serve))

``serve`` starts its clients, waits for ``stop``, finishes in-flight work, commits
offsets and stops its clients in reverse order of start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from switchboard.common import telemetry
from switchboard.common.config import ServiceSettings
from switchboard.common.logging import configure_logging

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_handlers(stop: asyncio.Event) -> None:
    """Make SIGTERM and SIGINT set ``stop`` instead of killing the process."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _on_signal, sig, stop)


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    if stop.is_set():
        return
    logger.info("stop requested, draining", extra={"signal": sig.name})
    stop.set()


async def drain(work: Awaitable[object], timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``work`` to finish; False if it had to be cancelled."""
    try:
        await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        logger.warning("drain timed out; in-flight work cancelled", extra={"timeout_s": timeout_s})
        return False
    return True


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def until_stopped(stop: asyncio.Event, *futures: asyncio.Future[Any]) -> set[asyncio.Future[Any]]:
    """Wait until ``stop`` is set or one of ``futures`` is done; the ones done (none when
    ``stop`` came first). Nothing is cancelled: what is still running is the caller's."""
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *futures], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    return done - {stopper}


async def sleep_until_woken(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``wake`` or ``stop`` is set meanwhile; ``wake`` is
    cleared on return (a NOTIFY-driven loop's nap)."""
    if seconds > 0:
        waiter = asyncio.create_task(wake.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, stopper], timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
    wake.clear()


def run(serve: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``serve(stop)`` on a fresh event loop with stop signals installed; returns an exit code."""

    async def _main() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        await serve(stop)

    try:
        asyncio.run(_main())
    except Exception:
        logger.exception("service failed")
        return 1
    return 0


# Exit code of a service that refuses its configuration (1: it failed while running).
EXIT_CONFIG = 2


def refusal(settings_type: type[ServiceSettings], error: ValidationError) -> str:
    """One line saying which settings (by environment variable) are refused and why; never
    a value (it may be a secret)."""
    prefix = str(settings_type.model_config.get("env_prefix", ""))
    reasons = []
    for item in error.errors(include_url=False, include_input=False):
        name = prefix + "__".join(str(part) for part in item["loc"]).upper()
        reason = item["msg"].removeprefix("Value error, ")
        reasons.append(f"{name} {reason}" if item["loc"] else reason)
    service = settings_type.model_fields["service_name"].default
    return f"{service}: configuration refused: " + "; ".join(reasons)


def main(settings_type: type[S], serve: Callable[[S, asyncio.Event], Awaitable[None]]) -> int:
    """A service's entry point: read its settings once, log as JSON, run ``serve`` until
    stopped. Settings it cannot accept end it at once with one line on stderr, exit code 2."""
    try:
        settings = settings_type()
    except ValidationError as exc:
        sys.stderr.write(refusal(settings_type, exc) + "\n")
        return EXIT_CONFIG
    configure_logging(settings.service_name, settings.log_level)
    telemetry.configure(settings.service_name, settings.otlp_endpoint, settings.trace_sample_ratio)
    try:
        return run(lambda stop: serve(settings, stop))
    finally:
        telemetry.shutdown()
