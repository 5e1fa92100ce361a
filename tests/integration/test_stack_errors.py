"""Bad configuration stops `infra/stack.sh` with one clear line: what, and how to fix it."""

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = str(ROOT / "infra" / "stack.sh")


@pytest.fixture
def state() -> Iterator[Path]:
    """A throwaway state folder the unprivileged run user can reach (unlike pytest's tmp_path)."""
    path = (ROOT / ".state").resolve() / f"errors-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(args: list[str], state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STACK, *args],
        env={**os.environ, "SB_STATE": str(state), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_taken_port_names_the_port_and_the_setting(state: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(["up", "mosquitto"], state, SB_MQTT_PORT=str(port))
    assert result.returncode == 1
    assert _error_lines(result) == [
        f"error: port {port} needed by mosquitto is taken by another process; "
        "stop it or set SB_MQTT_PORT to a free port"
    ]


def test_failed_download_says_what_and_where_to_look(state: Path) -> None:
    result = _run(["install"], state, SB_ES_VERSION="0.0.1")
    assert result.returncode == 1
    (line,) = _error_lines(result)
    assert "could not fetch Elasticsearch 0.0.1 from Maven Central" in line
    assert "elasticsearch-install.log" in line


def test_missing_java_says_how_to_install_it(state: Path, tmp_path: Path) -> None:
    # A PATH with everything this machine has except java.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for tool in Path(folder).glob("*") if Path(folder).is_dir() else []:
            target = fake_bin / tool.name
            if tool.name != "java" and not target.exists():
                target.symlink_to(tool)
    result = _run(["install"], state, PATH=str(fake_bin))
    assert result.returncode == 1
    (line,) = _error_lines(result)
    assert line.startswith("error: java not found; install a Java 17+ runtime")
