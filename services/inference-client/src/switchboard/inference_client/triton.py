"""Streaming calls to Triton over gRPC (tritonclient aio)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient

from switchboard.common import telemetry
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers
from switchboard.inference_client.config import Target
from switchboard.inference_client.metrics import MODEL_LOAD


@dataclass
class Piece:
    """One streamed response: text, and on the last one the finish reason and usage."""

    text: str
    finish_reason: str = ""
    usage: m.Usage | None = None


class TritonError(RuntimeError):
    """Triton answered with an error."""


@dataclass(frozen=True)
class ModelTraits:
    """What the client needs to know of a model's configuration to call it."""

    batched: bool  # max_batch_size > 0: every tensor has a leading batch dimension
    decoupled: bool  # answers with a stream of responses (LLMs) rather than one


class TritonClient:
    """One gRPC connection to Triton, shared by all requests of the process."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._client = grpcclient.InferenceServerClient(url)
        self._timeout_s = timeout_s
        self._traits: dict[tuple[str, str], ModelTraits] = {}

    async def close(self) -> None:
        await self._client.close()

    async def ready(self, model: str, version: str = "") -> bool:
        return bool(await self._client.is_model_ready(model, version))

    async def load(self, model: str) -> None:
        """Load ``model`` from Triton's repository (explicit model-control mode); returns
        once it is ready. Loading a model already loaded reloads it, so check first."""
        self._traits = {k: v for k, v in self._traits.items() if k[0] != model}
        with MODEL_LOAD.labels(model=model).time():
            await self._client.load_model(model)

    async def unload(self, model: str) -> None:
        """Unload ``model``; Triton lets the requests it is running finish first."""
        await self._client.unload_model(model)
        self._traits = {k: v for k, v in self._traits.items() if k[0] != model}

    async def traits(self, target: Target) -> ModelTraits:
        """Read from the model's configuration once, then cached."""
        key = (target.model, target.version)
        if key not in self._traits:
            reply = await self._client.get_model_config(target.model, target.version, as_json=True)
            config = reply["config"]
            self._traits[key] = ModelTraits(
                batched=int(config.get("max_batch_size", 0)) > 0,
                decoupled=bool(config.get("model_transaction_policy", {}).get("decoupled", False)),
            )
        return self._traits[key]

    async def stream(self, target: Target, request: m.InferenceRequest, max_tokens: int) -> AsyncIterator[Piece]:
        """Stream the answer of ``target.model`` to ``request``.

        Decoupled models are called over a gRPC stream and yield a piece per response;
        the others get one plain (dynamically batchable) call and yield one piece.
        """
        traits = await self.traits(target)
        inputs = self._inputs(target, request, max_tokens, traits.batched)
        # The model call's span (telemetry.model_call) goes along: Triton's spans are its children.
        traceparent = telemetry.current_traceparent()
        headers = {"traceparent": traceparent} if traceparent else None
        async with asyncio.timeout(self._timeout_s):
            if not (traits.decoupled if target.stream is None else target.stream):
                response = await self._client.infer(
                    target.model, inputs, model_version=target.version, request_id=request.request_id, headers=headers
                )
                yield self._piece(target, response)
                return

            async def one_request() -> AsyncIterator[dict[str, Any]]:
                yield {
                    "model_name": target.model,
                    "model_version": target.version,
                    "inputs": inputs,
                    "request_id": request.request_id,
                }

            async for response, error in self._client.stream_infer(one_request(), headers=headers):
                if error is not None:
                    raise TritonError(str(error))
                yield self._piece(target, response)

    @staticmethod
    def _inputs(
        target: Target, request: m.InferenceRequest, max_tokens: int, batched: bool
    ) -> list[grpcclient.InferInput]:
        if target.kind == "echo":
            return [
                _tensor("text", "BYTES", np.array([handlers.last_user_text(request).encode()], np.object_), batched)
            ]
        params = request.params
        inputs = [
            _tensor(
                "messages", "BYTES", np.array([handlers.chat_messages_json(request).encode()], np.object_), batched
            ),
            _tensor("max_tokens", "INT32", np.array([params.max_tokens or max_tokens], np.int32), batched),
            _tensor("temperature", "FP32", np.array([params.temperature], np.float32), batched),
        ]
        if params.seed:
            inputs.append(_tensor("seed", "INT64", np.array([params.seed], np.int64), batched))
        return inputs

    @staticmethod
    def _piece(target: Target, response: Any) -> Piece:
        text = _first(response, "text").decode("utf-8", errors="replace")
        if target.kind == "echo":
            # The streaming echo model sends words with their index; put the spaces back.
            index = response.as_numpy("index")
            return Piece(text=" " + text if index is not None and int(index.reshape(-1)[0]) else text)
        reason = _first(response, "finish_reason").decode()
        usage = None
        if reason:
            usage = m.Usage(
                prompt_tokens=int(_first(response, "prompt_tokens")),
                completion_tokens=int(_first(response, "completion_tokens")),
            )
        return Piece(text=text, finish_reason=reason, usage=usage)


def _tensor(name: str, datatype: str, value: np.ndarray, batched: bool) -> grpcclient.InferInput:
    """One input tensor of one element; a batch of one for batched models."""
    if batched:
        value = value.reshape(1, -1)
    tensor = grpcclient.InferInput(name, list(value.shape), datatype)
    tensor.set_data_from_numpy(value)
    return tensor


def _first(response: Any, name: str) -> Any:
    """The single element of output ``name``, whatever its batch dimensions."""
    return response.as_numpy(name).reshape(-1)[0]
