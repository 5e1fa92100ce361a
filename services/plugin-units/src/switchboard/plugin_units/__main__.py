"""``python -m switchboard.plugin_units``"""

from __future__ import annotations

import sys

from switchboard.common import lifecycle
from switchboard.plugin_units.app import serve
from switchboard.plugin_units.config import Settings


def main() -> int:
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
