"""No secret of the local stack is ever on a command line, which every user can read with
ps: not in the servers' and services' own, not in the health checks', not in what starts
them. Watched from /proc while the status checks run and two components restart (and every
e2e pipeline checks its own services' secrets once they serve: tests/e2e/pipeline.py)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from tests.command_lines import command_lines, leaked

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _secrets() -> dict[str, str]:
    folder = (ROOT / ".state").resolve() / "secrets"
    found = {path.name: path.read_text().strip() for path in folder.iterdir() if path.is_file()}
    assert found, f"no secrets in {folder}: is the stack up (make up)?"
    return found


def test_no_secret_is_on_a_command_line_while_the_stack_starts_and_checks_itself() -> None:
    secrets = _secrets()
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(command_lines())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for args in (["status"], ["restart", "mosquitto"], ["restart", "openai"], ["status"]):
            subprocess.run(["infra/stack.sh", *args], cwd=ROOT, check=True, capture_output=True, timeout=300)
    finally:
        done.set()
        watcher.join()
    assert len(seen) > 20, "the watcher saw too little to mean anything"
    assert any("mosquitto" in line for line in seen) and any("llama_cpp.server" in line for line in seen)
    leaks = leaked(secrets, seen)
    assert not leaks, f"secrets on a command line: {sorted(leaks)}"
