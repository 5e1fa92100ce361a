"""``python -m switchboard.inference_client``"""

from __future__ import annotations

import sys

from switchboard.common import lifecycle
from switchboard.inference_client.app import serve
from switchboard.inference_client.config import Settings


def main() -> int:
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
