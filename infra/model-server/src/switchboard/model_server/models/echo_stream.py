"""``echo_stream``: decoupled; streams the whitespace-separated words of ``text`` back,
one response each, with its 0-based ``index``. Deterministic, for tests."""

from __future__ import annotations

from typing import Any

import triton_python_backend_utils as pb_utils

from switchboard.model_server.tensors import int_out, text_in, text_out


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            sender = request.get_response_sender()
            for index, word in enumerate(text_in(request, "text").split()):
                if sender.is_cancelled():
                    break
                sender.send(
                    pb_utils.InferenceResponse(output_tensors=[text_out("text", word), int_out("index", index)])
                )
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
