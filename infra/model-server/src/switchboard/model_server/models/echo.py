"""``echo``: unary and batchable; answers each row of ``text`` with ``"echo: " + text``.
Deterministic, for tests and benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text").as_numpy()
            answer = np.array([b"echo: " + row for row in text.reshape(-1)], dtype=np.object_).reshape(text.shape)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("text", answer)]))
        return responses
