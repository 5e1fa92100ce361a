"""A three-broker KRaft Kafka of its own for fault tests, started by the stack's script.

``infra/stack.sh`` with ``SB_KAFKA_BROKERS=3`` starts three combined broker+controller
nodes (a controller quorum of three) with topics at replication 3 and
``min.insync.replicas`` 2, like production. This cluster lives in a state folder and on
ports of its own (``SB_CHAOS_KAFKA_PORT``, default 29092, and the five above it), so it
runs beside a developer's ``make up`` stack and never touches its data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

STACK = Path(__file__).resolve().parents[2] / "infra" / "stack.sh"


class KafkaCluster:
    """``start()`` the cluster, ``kill(n)`` a node with SIGKILL, ``restart(n)`` it, ``stop()``."""

    def __init__(self, port: int | None = None, heap: str = "384m") -> None:
        self.port = port or int(os.environ.get("SB_CHAOS_KAFKA_PORT", "29092"))
        # Under /var/tmp and open to others: the stack's servers may run as another user.
        self.state = Path(tempfile.mkdtemp(prefix="switchboard-chaos-", dir="/var/tmp"))
        self.state.chmod(0o755)
        self._env = {
            # The caller's SB_* settings belong to its own stack, not to this one.
            **{k: v for k, v in os.environ.items() if not k.startswith("SB_")},
            "SB_STATE": str(self.state),
            "SB_KAFKA_BROKERS": "3",
            "SB_KAFKA_PORT": str(self.port),
            "SB_KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "SB_KAFKA_HEAP": heap,
            "SB_KAFKA_SCRAM_USER": "",  # no SCRAM account: these tests use the plaintext listeners
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + 2 * n}" for n in range(3))

    def _stack(self, *args: str) -> None:
        done = subprocess.run([str(STACK), *args], env=self._env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"infra/stack.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._stack("up", "kafka")

    def kill(self, node: int) -> None:
        """SIGKILL node ``node``, as a crash: no controlled shutdown, no flush."""
        self._stack("broker", "kill", str(node))

    def restart(self, node: int) -> None:
        """Start a killed node and wait until it serves."""
        self._stack("broker", "start", str(node))

    def stop(self) -> None:
        """Stop every node and remove the cluster's data."""
        try:
            self._stack("down")
        finally:
            shutil.rmtree(self.state, ignore_errors=True)
