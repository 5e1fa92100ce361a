"""``echo_stream``: decoupled; streams the whitespace-separated words of ``text`` back,
one response each, with its 0-based ``index``. Deterministic, for tests.

Parameter ``word_delay_ms`` (default 0) paces the words, for a stream that stays in flight
a while; each request then streams from its own thread, so requests overlap.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import triton_python_backend_utils as pb_utils

from switchboard.model_server.tensors import int_out, text_in, text_out


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self._delay_s = float(parameters.get("word_delay_ms", {}).get("string_value", "0")) / 1000

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            if self._delay_s:
                threading.Thread(target=self._stream, args=(request,), name="echo-stream", daemon=True).start()
            else:
                self._stream(request)

    def _stream(self, request: Any) -> None:
        sender = request.get_response_sender()
        for index, word in enumerate(text_in(request, "text").split()):
            if sender.is_cancelled():
                break
            if self._delay_s:
                time.sleep(self._delay_s)
            sender.send(pb_utils.InferenceResponse(output_tensors=[text_out("text", word), int_out("index", index)]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
