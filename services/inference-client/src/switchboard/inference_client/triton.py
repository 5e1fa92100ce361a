"""Streaming calls to Triton over gRPC (tritonclient aio)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers
from switchboard.inference_client.config import ModelRoute


@dataclass
class Piece:
    """One streamed response: text, and on the last one the finish reason and usage."""

    text: str
    finish_reason: str = ""
    usage: m.Usage | None = None


class TritonError(RuntimeError):
    """Triton answered with an error."""


class TritonClient:
    """One gRPC connection to Triton, shared by all requests of the process."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._client = grpcclient.InferenceServerClient(url)
        self._timeout_s = timeout_s

    async def close(self) -> None:
        await self._client.close()

    async def ready(self, model: str) -> bool:
        return bool(await self._client.is_model_ready(model))

    async def stream(self, route: ModelRoute, request: m.InferenceRequest, max_tokens: int) -> AsyncIterator[Piece]:
        """Stream the answer of ``route.model`` to ``request``."""
        inputs = self._inputs(route, request, max_tokens)

        async def one_request() -> AsyncIterator[dict[str, Any]]:
            yield {
                "model_name": route.model,
                "model_version": route.version,
                "inputs": inputs,
                "request_id": request.request_id,
            }

        async with asyncio.timeout(self._timeout_s):
            async for response, error in self._client.stream_infer(one_request()):
                if error is not None:
                    raise TritonError(str(error))
                yield self._piece(route, response)

    @staticmethod
    def _inputs(route: ModelRoute, request: m.InferenceRequest, max_tokens: int) -> list[grpcclient.InferInput]:
        if route.kind == "echo":
            return [_bytes("text", handlers.last_user_text(request))]
        params = request.params
        tokens = grpcclient.InferInput("max_tokens", [1], "INT32")
        tokens.set_data_from_numpy(np.array([params.max_tokens or max_tokens], dtype=np.int32))
        temperature = grpcclient.InferInput("temperature", [1], "FP32")
        temperature.set_data_from_numpy(np.array([params.temperature], dtype=np.float32))
        inputs = [_bytes("messages", handlers.chat_messages_json(request)), tokens, temperature]
        if params.seed:
            seed = grpcclient.InferInput("seed", [1], "INT64")
            seed.set_data_from_numpy(np.array([params.seed], dtype=np.int64))
            inputs.append(seed)
        return inputs

    @staticmethod
    def _piece(route: ModelRoute, response: Any) -> Piece:
        text = response.as_numpy("text")[0].decode("utf-8", errors="replace")
        if route.kind == "echo":
            # The echo model streams words; put the spaces back.
            index = int(response.as_numpy("index")[0])
            return Piece(text=text if index == 0 else " " + text)
        reason = response.as_numpy("finish_reason")[0].decode()
        usage = None
        if reason:
            usage = m.Usage(
                prompt_tokens=int(response.as_numpy("prompt_tokens")[0]),
                completion_tokens=int(response.as_numpy("completion_tokens")[0]),
            )
        return Piece(text=text, finish_reason=reason, usage=usage)


def _bytes(name: str, value: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value.encode("utf-8")], dtype=np.object_))
    return tensor
