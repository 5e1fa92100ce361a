"""Run the local Triton Inference Server: ``python -m switchboard.model_server``.

Writes the model repository from the models file, lays out the Python backend (the
``tritonserver`` binary, its libraries and the backend stub all come from the
``nvidia-pytriton`` wheel), then replaces itself with ``tritonserver`` in explicit
model-control mode, so that SIGTERM reaches Triton directly and it shuts down cleanly.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytriton

from switchboard.model_server import repository
from switchboard.model_server.config import ModelsFile, Settings

logger = logging.getLogger("switchboard.model_server")

_WHEEL = Path(pytriton.__file__).resolve().parent
_DIST = _WHEEL / "tritonserver"
_LIBS = _WHEEL.parent / "nvidia_pytriton.libs"


def backends(target: Path) -> Path:
    """The Python backend, with the stub built for this interpreter's version."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(_DIST / "backends", target)
    stub = (
        _DIST / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" / "triton_python_backend_stub"
    )
    if not stub.is_file():
        raise FileNotFoundError(f"no Triton Python backend stub for Python {sys.version_info[:2]} in {_DIST}")
    shutil.copy(stub, target / "python" / "triton_python_backend_stub")
    return target


def command(settings: Settings, repo: Path, backend_dir: Path, load: list[str]) -> list[str]:
    argv = [
        str(_DIST / "bin" / "tritonserver"),
        f"--model-repository={repo}",
        "--model-control-mode=explicit",
        f"--backend-directory={backend_dir}",
        f"--cache-directory={_DIST / 'caches'}",
        f"--http-address={settings.host}",
        f"--http-port={settings.http_port}",
        f"--grpc-address={settings.host}",
        f"--grpc-port={settings.grpc_port}",
        f"--metrics-address={settings.host}",
        f"--metrics-port={settings.metrics_port}",
        "--allow-cpu-metrics=false",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        f"--log-verbose={settings.log_verbose}",
        *tracing(settings),
    ]
    return argv + [f"--load-model={name}" for name in load]


def tracing(settings: Settings) -> list[str]:
    """Triton's OpenTelemetry trace mode: a span per request (and its compute), exported to
    ``settings.otlp_traces_url``, continuing the trace of the request's traceparent."""
    if not settings.otlp_traces_url:
        return []
    return [
        "--trace-config=mode=opentelemetry",
        "--trace-config=level=TIMESTAMPS",
        f"--trace-config=rate={settings.trace_rate}",
        "--trace-config=count=-1",
        f"--trace-config=opentelemetry,url={settings.otlp_traces_url}",
        "--trace-config=opentelemetry,resource=service.name=triton",
    ]


def environment() -> dict[str, str]:
    """The stub embeds libpython: it must find this interpreter's (pyenv's, not the
    system's) and this environment's packages, including switchboard.model_server."""
    paths = [sysconfig.get_config_var("LIBDIR"), str(_LIBS), os.environ.get("LD_LIBRARY_PATH", "")]
    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], str(Path(__file__).parents[2])]
    return {
        **os.environ,
        "LD_LIBRARY_PATH": ":".join(p for p in paths if p),
        "PYTHONPATH": ":".join(p for p in dict.fromkeys([*site, os.environ.get("PYTHONPATH", "")]) if p),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    models = ModelsFile.read(settings.models_file, settings.environ())
    workspace = settings.workspace.resolve()
    repo = workspace / "models"
    load = repository.write(models, repo)
    argv = command(settings, repo, backends(workspace / "backends"), load)
    logger.info("models from %s: %s (loading %s)", settings.models_file, ", ".join(models.models), ", ".join(load))
    logger.info("exec %s", " ".join(argv))
    sys.stdout.flush()
    os.execve(argv[0], argv, environment())  # noqa: S606 (a fixed path from the wheel, no shell)


if __name__ == "__main__":
    sys.exit(main())
