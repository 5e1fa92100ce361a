"""Triton Python model: the token ids the engine streams -> the next piece of text.

In streaming mode each engine response carries the newest token(s), decoded on their own.
Known limit: a character split across two tokens (some Chinese, emoji) shows as U+FFFD in
the streamed pieces; the inference client's final result is the pieces joined.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer


class TritonPythonModel:
    def initialize(self, args):
        parameters = {k: v["string_value"] for k, v in json.loads(args["model_config"])["parameters"].items()}
        self.tokenizer = AutoTokenizer.from_pretrained(parameters["tokenizer_dir"])

    def execute(self, requests):
        responses = []
        for request in requests:
            ids = pb_utils.get_input_tensor_by_name(request, "output_ids").as_numpy()
            lengths = pb_utils.get_input_tensor_by_name(request, "sequence_length").as_numpy()
            prompt = int(pb_utils.get_input_tensor_by_name(request, "input_lengths").as_numpy().reshape(-1)[0])
            tokens = ids.reshape(-1)[: int(lengths.reshape(-1)[0])].tolist()
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            outputs = {
                "text": np.array([[text.encode("utf-8")]], dtype=np.object_),
                "finish_reason": np.array([[b""]], dtype=np.object_),
                "prompt_tokens": np.array([[prompt]], dtype=np.int32),
                "completion_tokens": np.array([[len(tokens)]], dtype=np.int32),
            }
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(k, v) for k, v in outputs.items()])
            )
        return responses
