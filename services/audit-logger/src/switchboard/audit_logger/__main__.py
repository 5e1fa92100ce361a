"""``python -m switchboard.audit_logger``"""

from __future__ import annotations

import sys

from switchboard.audit_logger.app import serve
from switchboard.audit_logger.config import Settings
from switchboard.common import lifecycle


def main() -> int:
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
