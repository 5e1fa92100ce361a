"""The GPU model repository (deploy/triton-gpu) is checked here without a GPU: every
config.pbtxt parses as Triton's ModelConfig, the ensembles are wired tensor for tensor with
matching types, and the ensembles offer exactly the interface the inference client's "chat"
targets call (the same one the local chat model has)."""

from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from switchboard.inference_client import routes_file
from switchboard.model_server.repository import TENSORS

REPO = Path(__file__).resolve().parents[2] / "deploy" / "triton-gpu" / "model_repository"


def _configs() -> dict[str, mc.ModelConfig]:
    configs = {}
    for path in sorted(REPO.glob("*/config.pbtxt")):
        config = text_format.Parse(path.read_text(), mc.ModelConfig())
        assert config.name == path.parent.name, path
        configs[config.name] = config
    return configs


CONFIGS = _configs()
ENSEMBLES = [name for name, c in CONFIGS.items() if c.platform == "ensemble"]


def _io(config: mc.ModelConfig) -> tuple[dict[str, int], dict[str, int]]:
    return {i.name: i.data_type for i in config.input}, {o.name: o.data_type for o in config.output}


def test_the_repository_has_both_engines_and_their_ensembles() -> None:
    assert set(CONFIGS) == {"chat", "chat_fp8", "preprocessing", "postprocessing", "llm_int8", "llm_fp8"}
    assert sorted(ENSEMBLES) == ["chat", "chat_fp8"]
    for name in ("llm_int8", "llm_fp8"):
        config = CONFIGS[name]
        assert config.backend == "tensorrtllm" and config.model_transaction_policy.decoupled
        assert config.dynamic_batching.max_queue_delay_microseconds > 0 and config.instance_group
        assert config.parameters["gpt_model_path"].string_value.endswith(name.removeprefix("llm_"))
    for name in ("preprocessing", "postprocessing"):
        assert CONFIGS[name].backend == "python" and (REPO / name / "1" / "model.py").is_file()


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_every_ensemble_step_is_wired_to_tensors_that_exist_with_matching_types(ensemble: str) -> None:
    config = CONFIGS[ensemble]
    inputs, outputs = _io(config)
    known = dict(inputs)  # tensor name in the ensemble -> data type
    for step in config.ensemble_scheduling.step:
        model_inputs, model_outputs = _io(CONFIGS[step.model_name])
        for model_tensor, ensemble_tensor in step.input_map.items():
            assert model_tensor in model_inputs, f"{step.model_name} has no input {model_tensor}"
            assert ensemble_tensor in known, f"{ensemble_tensor} used by {step.model_name} before it is made"
            assert known[ensemble_tensor] == model_inputs[model_tensor], (step.model_name, model_tensor)
        required = {i.name for i in CONFIGS[step.model_name].input if not i.optional}
        assert required <= set(step.input_map), f"{step.model_name} misses {required - set(step.input_map)}"
        for model_tensor, ensemble_tensor in step.output_map.items():
            assert model_tensor in model_outputs, f"{step.model_name} has no output {model_tensor}"
            known[ensemble_tensor] = model_outputs[model_tensor]
    for name, data_type in outputs.items():
        assert known.get(name) == data_type, f"ensemble output {name} is not produced as declared"


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_the_ensembles_speak_the_chat_interface_the_client_calls(ensemble: str) -> None:
    """The same tensor names as the local chat model (model_server.repository.TENSORS);
    the same types too."""
    chat_inputs, chat_outputs = TENSORS["chat"]
    inputs, outputs = _io(CONFIGS[ensemble])
    assert inputs == {name: data_type for name, data_type, _, _ in chat_inputs}
    assert outputs == {name: data_type for name, data_type, _, _ in chat_outputs}
    assert {i.name for i in CONFIGS[ensemble].input if not i.optional} == {"messages"}


def test_the_kubernetes_routes_parse_and_name_only_models_of_the_gpu_repository(tmp_path: Path) -> None:
    configmaps = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "inference-client" / "configmap.yaml"
    (routes_map,) = [
        d for d in yaml.safe_load_all(configmaps.read_text()) if d["metadata"]["name"] == "inference-routes"
    ]
    path = tmp_path / "routes.yaml"
    path.write_text(routes_map["data"]["routes.yaml"])
    routes = routes_file.read(path)
    named = {t.model for r in routes.values() for t in (*r.targets, *r.fallback)}
    assert named and named <= set(ENSEMBLES)
    assert all(t.stream for r in routes.values() for t in (*r.targets, *r.fallback))
