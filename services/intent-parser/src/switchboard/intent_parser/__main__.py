"""``python -m switchboard.intent_parser``: run the Faust worker.

Faust's worker owns the event loop and stops gracefully on SIGTERM/SIGINT: the agents
finish the records in flight and offsets are committed before exit. That stop is bounded
(``Settings.shutdown_timeout_s``): once its group coordinator is closing, aiokafka can retry
a commit without end, which once held a replica for the full 30 s a pod is given.
Past the bound the process logs where it was stuck and exits; nothing is lost, since
records after the last commit are read again by the partition's next owner.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading

import faust

from switchboard.common import telemetry
from switchboard.common.logging import configure_logging
from switchboard.intent_parser.app import Probes, create_app
from switchboard.intent_parser.config import Settings

logger = logging.getLogger(__name__)


def exit_after(seconds: float) -> threading.Timer:
    """End the process ``seconds`` from now unless it has ended by then (a daemon timer)."""

    def overran() -> None:
        logger.error(
            "stop overran its bound; exiting without waiting for it (uncommitted records are handled again)",
            extra={"shutdown_timeout_s": seconds},
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(seconds, overran)
    timer.daemon = True
    timer.start()
    return timer


class Worker(faust.Worker):
    """Faust's worker, whose stop on a signal is bounded."""

    def __init__(self, *services: object, shutdown_timeout_s: float, **kwargs: object) -> None:
        super().__init__(*services, **kwargs)  # type: ignore[arg-type]
        self.shutdown_timeout_s = shutdown_timeout_s
        self._deadline: threading.Timer | None = None

    def _schedule_shutdown(self, sig: signal.Signals) -> None:
        if self._deadline is None:
            self._deadline = exit_after(self.shutdown_timeout_s)
        super()._schedule_shutdown(sig)


def main() -> int:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    telemetry.configure(settings.service_name, settings.otlp_endpoint, settings.trace_sample_ratio)
    app = create_app(settings)
    worker = Worker(
        app,
        Probes(app, settings),
        shutdown_timeout_s=settings.shutdown_timeout_s,
        loglevel=settings.log_level,
        override_logging=False,
        quiet=True,
    )
    try:
        worker.execute_from_commandline()
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
