"""The stack's state is where its unprivileged run user can reach it, wherever the checkout is."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_others_cannot_enter_keeps_its_state_where_the_run_user_can(tmp_path: Path) -> None:
    # A checkout in a folder of mode 700 (root's home, pytest's tmp_path): just the scripts
    # that decide where the state goes, and what was made there before they ran.
    checkout = tmp_path / "checkout"
    (checkout / "infra").mkdir(parents=True)
    for name in ("lib.sh", "stack.env"):
        shutil.copy(ROOT / "infra" / name, checkout / "infra" / name)
    (checkout / ".state" / "logs").mkdir(parents=True)
    (checkout / ".state" / "logs" / "buf-install.log").write_text("built")
    tmp_path.chmod(0o700)
    if os.geteuid() != 0:
        # Not root: the servers run as this user, who can reach the checkout; nothing moves.
        found = subprocess.run(
            ["bash", "-c", ". infra/lib.sh && echo $SB_STATE"], cwd=checkout, capture_output=True, text=True, check=True
        )
        assert found.stdout.strip() == str(checkout / ".state")
        return
    # What a removed checkout at the same path left behind is not this one's state.
    left = Path("/var/tmp/switchboard") / hashlib.sha256(str(checkout).encode()).hexdigest()[:12]
    (left / "kafka").mkdir(parents=True, exist_ok=True)

    script = '. infra/lib.sh && ensure_run_user && "${RUN_AS[@]}" test -x "$SB_STATE" && echo "$SB_STATE"'
    result = subprocess.run(["bash", "-c", script], cwd=checkout, capture_output=True, text=True, check=False)
    state = Path(result.stdout.strip())
    try:
        assert result.returncode == 0, result.stderr
        assert state.parent == Path("/var/tmp/switchboard")
        assert (checkout / ".state").resolve() == state  # paths through .state still work
        assert (state / "logs" / "buf-install.log").read_text() == "built"  # earlier state moved along
        assert not (state / "kafka").exists()
        # Sourced again (every component script does), it finds the same place.
        again = subprocess.run(
            ["bash", "-c", ". infra/lib.sh && echo $SB_STATE"], cwd=checkout, capture_output=True, text=True, check=True
        )
        assert again.stdout.strip() == str(state)
    finally:
        if state.parent == Path("/var/tmp/switchboard"):
            shutil.rmtree(state, ignore_errors=True)
