from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from switchboard.model_server import repository
from switchboard.model_server.config import DEFAULT_MODELS_FILE, ModelsFile, ModelSpec

ENVIRON = {"SB_TRITON_CHAT_MODEL_PATH": "/models/chat.gguf", "SB_TRITON_CHAT_THREADS": "3"}


def _written(root: Path, name: str) -> mc.ModelConfig:
    return text_format.Parse((root / name / "config.pbtxt").read_text(), mc.ModelConfig())


def test_the_shipped_models_file_becomes_a_repository_with_versions_instances_and_batching(tmp_path: Path) -> None:
    models = ModelsFile.read(DEFAULT_MODELS_FILE, ENVIRON)
    load = repository.write(models, tmp_path)
    assert "echo_next" not in load and {"echo", "echo_stream", "smollm2"} <= set(load)
    echo = _written(tmp_path, "echo")
    assert list(echo.version_policy.specific.versions) == [1, 2]
    assert sorted(p.name for p in (tmp_path / "echo").iterdir()) == ["1", "2", "config.pbtxt"]
    assert echo.instance_group[0].count == 2 and echo.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert echo.max_batch_size == 16 and echo.dynamic_batching.max_queue_delay_microseconds == 2000
    assert echo.backend == "python" and not echo.model_transaction_policy.decoupled
    chat = _written(tmp_path, "smollm2")
    assert chat.model_transaction_policy.decoupled and not chat.HasField("dynamic_batching")
    assert chat.parameters["model_path"].string_value == "/models/chat.gguf"
    assert chat.parameters["threads"].string_value == "3"
    assert {i.name: i.optional for i in chat.input} == {
        "messages": False,
        "max_tokens": True,
        "temperature": True,
        "seed": True,
    }
    shim = (tmp_path / "smollm2" / "1" / "model.py").read_text()
    assert "from switchboard.model_server.models.chat import TritonPythonModel" in shim


def test_rewriting_drops_models_no_longer_listed(tmp_path: Path) -> None:
    (tmp_path / "stale" / "1").mkdir(parents=True)
    repository.write(ModelsFile(models={"echo": ModelSpec(backend="echo")}), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["echo"]


def test_dynamic_batching_needs_a_batch_size() -> None:
    spec = ModelSpec.model_validate({"backend": "echo", "dynamic_batching": {"max_queue_delay_microseconds": 10}})
    with pytest.raises(ValueError, match="needs max_batch_size"):
        repository.model_config("echo", spec)


def test_a_parameter_naming_an_unset_variable_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text('models:\n  chat:\n    backend: chat\n    parameters: {model_path: "${NOPE}"}\n')
    with pytest.raises(ValueError, match="NOPE is not set"):
        ModelsFile.read(path, {})


def test_an_unknown_backend_or_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  x:\n    backend: tensorflow\n")
    with pytest.raises(ValueError, match="backend"):
        ModelsFile.read(path, {})
    path.write_text("models:\n  x:\n    backend: echo\n    instance: 2\n")
    with pytest.raises(ValueError, match="instance"):
        ModelsFile.read(path, {})
