"""``python -m switchboard.channel_gateway``"""

from __future__ import annotations

import sys

from switchboard.channel_gateway.app import serve
from switchboard.channel_gateway.config import Settings
from switchboard.common import lifecycle


def main() -> int:
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
