"""``python -m switchboard.inference_client``"""

from __future__ import annotations

import sys

from switchboard.common import lifecycle
from switchboard.common.logging import configure_logging
from switchboard.inference_client.app import serve
from switchboard.inference_client.config import Settings


def main() -> int:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    return lifecycle.run(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    sys.exit(main())
