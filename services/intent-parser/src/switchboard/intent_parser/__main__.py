"""``python -m switchboard.intent_parser``: run the Faust worker.

Faust's worker owns the event loop and stops gracefully on SIGTERM/SIGINT: the agent
finishes the event in flight and offsets are committed before exit.
"""

from __future__ import annotations

import sys

import faust

from switchboard.common.logging import configure_logging
from switchboard.intent_parser.app import Probes, create_app
from switchboard.intent_parser.config import Settings


def main() -> int:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    app = create_app(settings)
    worker = faust.Worker(app, Probes(app, settings), loglevel=settings.log_level, override_logging=False, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
