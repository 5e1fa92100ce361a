"""``chat``: decoupled; streams the local chat model's answer (see :mod:`..llm`).

Inputs: ``messages`` (BYTES, a JSON list of ``{"role", "content"}``), optional
``max_tokens`` (INT32), ``temperature`` (FP32, 0 = greedy), ``seed`` (INT64). Each response
carries the next piece of ``text``; the last one also a ``finish_reason`` ("stop" or
"length") and token counts. Configuration parameters: ``model_path``, ``context_tokens``,
``threads``, ``default_max_tokens``.

Each request is generated on its own thread (llama.cpp blocks per token) and stops as soon
as Triton reports the request cancelled, when its caller went away or its stream closed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

from switchboard.model_server.llm import ChatModel, parse_messages
from switchboard.model_server.tensors import int_out, scalar_in, text_in, text_out

_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        parameters = {k: v["string_value"] for k, v in json.loads(args["model_config"])["parameters"].items()}
        self._model = ChatModel(
            Path(parameters["model_path"]),
            int(parameters.get("context_tokens", "2048")),
            int(parameters.get("threads", "1")),
            int(parameters.get("default_max_tokens", "256")),
        )
        self._logger = pb_utils.Logger

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            threading.Thread(target=self._answer, args=(request,), name="chat-generate", daemon=True).start()

    def _answer(self, request: Any) -> None:
        sender = request.get_response_sender()
        try:
            messages = parse_messages(text_in(request, "messages"))
            pieces = self._model.generate(
                messages,
                int(scalar_in(request, "max_tokens", self._model.default_max_tokens)),
                scalar_in(request, "temperature", 0.7),
                int(scalar_in(request, "seed", -1)),
                cancelled=sender.is_cancelled,
            )
            for piece in pieces:
                if piece.finish_reason == "cancelled":
                    self._logger.log_info("chat: request cancelled by its caller; generation stopped")
                    break
                sender.send(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            text_out("text", piece.text),
                            text_out("finish_reason", piece.finish_reason),
                            int_out("prompt_tokens", piece.prompt_tokens),
                            int_out("completion_tokens", piece.completion_tokens),
                        ]
                    )
                )
            sender.send(flags=_FINAL)
        except ValueError as exc:  # bad input: the caller sees why
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))), flags=_FINAL)
        except Exception as exc:  # noqa: BLE001 (the caller gets the error instead of a hung stream)
            self._logger.log_error(f"chat: generation failed: {exc!r}")
            sender.send(
                pb_utils.InferenceResponse(error=pb_utils.TritonError(f"generation failed: {exc}")), flags=_FINAL
            )
