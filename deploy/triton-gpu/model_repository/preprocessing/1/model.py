"""Triton Python model: chat messages (JSON) -> token ids with the model's chat template.

Runs inside the TensorRT-LLM Triton container (transformers is there); the tokenizer is
the one the engine was built from (``tokenizer_dir``).
"""

import json
import secrets

import numpy as np
import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer

_ROLES = {"system", "user", "assistant"}


class TritonPythonModel:
    def initialize(self, args):
        parameters = {k: v["string_value"] for k, v in json.loads(args["model_config"])["parameters"].items()}
        self.tokenizer = AutoTokenizer.from_pretrained(parameters["tokenizer_dir"])
        self.default_max_tokens = int(parameters.get("default_max_tokens", "256"))
        self.end_id = self.tokenizer.eos_token_id
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_id

    def execute(self, requests):
        return [self._one(request) for request in requests]

    def _one(self, request):
        raw = pb_utils.get_input_tensor_by_name(request, "messages").as_numpy().reshape(-1)[0]
        try:
            messages = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
            if (
                not isinstance(messages, list)
                or not messages
                or any(
                    not isinstance(t, dict) or t.get("role") not in _ROLES or not isinstance(t.get("content"), str)
                    for t in messages
                )
            ):
                raise ValueError('messages must be a non-empty JSON list of {"role", "content"}')
        except ValueError as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"bad messages: {exc}"))
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        max_tokens = self._scalar(request, "max_tokens", self.default_max_tokens)
        seed = self._scalar(request, "seed", -1)
        seed = seed if seed >= 0 else secrets.randbits(63)
        outputs = {
            "input_ids": np.array([ids], dtype=np.int32),
            "input_lengths": np.array([[len(ids)]], dtype=np.int32),
            "request_output_len": np.array([[max_tokens]], dtype=np.int32),
            "end_id": np.array([[self.end_id]], dtype=np.int32),
            "pad_id": np.array([[self.pad_id]], dtype=np.int32),
            "random_seed": np.array([[seed]], dtype=np.uint64),
            "streaming": np.array([[True]], dtype=np.bool_),
        }
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(k, v) for k, v in outputs.items()])

    @staticmethod
    def _scalar(request, name, default):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        return default if tensor is None else int(tensor.as_numpy().reshape(-1)[0])
