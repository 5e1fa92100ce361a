"""The worker's stop is bounded: a process whose stop hangs still ends, and says why."""

from __future__ import annotations

import subprocess
import sys
import time

# A stop that never finishes: the main thread blocks after the bound is armed.
_HANGING = """
import time
from switchboard.common.logging import configure_logging
from switchboard.intent_parser.__main__ import exit_after
configure_logging("intent-parser", "INFO")
exit_after(0.5)
time.sleep(60)
"""


def test_a_stop_that_hangs_ends_at_the_bound_with_the_reason_and_the_stack() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _HANGING], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 20  # not the 60 s sleep
    assert done.returncode == 0
    output = done.stdout + done.stderr
    assert "stop overran its bound" in output
    assert 'File "<string>", line 7' in output  # where the main thread was stuck: time.sleep(60)
