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
from collections.abc import Awaitable, Callable
from typing import TypeVar

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


def main(settings_type: Callable[[], S], serve: Callable[[S, asyncio.Event], Awaitable[None]]) -> int:
    """A service's entry point: read its settings once, log as JSON, run ``serve`` until stopped."""
    settings = settings_type()
    configure_logging(settings.service_name, settings.log_level)
    return run(lambda stop: serve(settings, stop))
