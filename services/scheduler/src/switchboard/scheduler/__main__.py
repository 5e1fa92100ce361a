"""``python -m switchboard.scheduler``"""

from __future__ import annotations

import sys

from switchboard.common import lifecycle
from switchboard.scheduler.app import serve
from switchboard.scheduler.config import Settings


def main() -> int:
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
