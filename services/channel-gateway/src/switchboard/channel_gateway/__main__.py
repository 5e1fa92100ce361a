"""``python -m switchboard.channel_gateway``"""

from __future__ import annotations

import sys

from switchboard.channel_gateway.app import serve
from switchboard.channel_gateway.config import Settings
from switchboard.common import lifecycle
from switchboard.common.logging import configure_logging


def main() -> int:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    return lifecycle.run(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    sys.exit(main())
