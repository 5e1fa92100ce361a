import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as triton
from tritonclient.grpc import InferResult

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client.config import ModelRoute
from switchboard.inference_client.triton import TritonClient
from tests.conftest import Stack

pytestmark = pytest.mark.integration


def _bytes_input(name: str, values: list[bytes], shape: list[int]) -> triton.InferInput:
    tensor = triton.InferInput(name, shape, "BYTES")
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_).reshape(shape))
    return tensor


async def _stream(client: triton.InferenceServerClient, request: dict[str, Any], timeout: float) -> list[InferResult]:
    async def one_request() -> AsyncIterator[dict[str, Any]]:
        yield request

    results: list[InferResult] = []
    async with asyncio.timeout(timeout):
        async for result, error in client.stream_infer(one_request()):
            assert error is None, error
            results.append(result)
    return results


async def test_server_and_models_ready(stack: Stack) -> None:
    client = triton.InferenceServerClient(stack.triton_grpc_url)
    try:
        assert await client.is_server_ready()
        for model in ("echo", "echo_stream", stack.chat_model):
            assert await client.is_model_ready(model), model
    finally:
        await client.close()


async def test_echo_model_is_deterministic_and_batches(stack: Stack) -> None:
    client = triton.InferenceServerClient(stack.triton_grpc_url)
    try:
        inputs = [_bytes_input("text", [b"hello", "你好".encode()], [2, 1])]
        result = await client.infer("echo", inputs)
        assert result.as_numpy("text").reshape(-1).tolist() == [b"echo: hello", "echo: 你好".encode()]
    finally:
        await client.close()


async def test_echo_stream_streams_words_in_order(stack: Stack) -> None:
    client = triton.InferenceServerClient(stack.triton_grpc_url)
    try:
        request = {"model_name": "echo_stream", "inputs": [_bytes_input("text", [b"one two three four"], [1])]}
        results = await _stream(client, request, timeout=30)
        words = [r.as_numpy("text")[0].decode() for r in results if r.as_numpy("text") is not None]
        indexes = [int(r.as_numpy("index")[0]) for r in results if r.as_numpy("index") is not None]
        assert words == ["one", "two", "three", "four"]
        assert indexes == [0, 1, 2, 3]
    finally:
        await client.close()


async def test_chat_model_streams_a_reply(stack: Stack) -> None:
    client = triton.InferenceServerClient(stack.triton_grpc_url)
    try:
        messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
        max_tokens = triton.InferInput("max_tokens", [1], "INT32")
        max_tokens.set_data_from_numpy(np.array([24], dtype=np.int32))
        temperature = triton.InferInput("temperature", [1], "FP32")
        temperature.set_data_from_numpy(np.array([0.0], dtype=np.float32))
        request = {
            "model_name": stack.chat_model,
            "inputs": [_bytes_input("messages", [json.dumps(messages).encode()], [1]), max_tokens, temperature],
        }
        results = await _stream(client, request, timeout=120)
        pieces = [r.as_numpy("text")[0].decode() for r in results]
        final = results[-1]
        text = "".join(pieces)
        # Several pieces (a real stream, not one blob), a reason to stop, consistent counts.
        assert len([p for p in pieces if p]) >= 2, pieces
        assert text.strip(), "empty reply"
        assert final.as_numpy("finish_reason")[0].decode() in {"stop", "length"}
        assert int(final.as_numpy("completion_tokens")[0]) == len([p for p in pieces if p])
        assert int(final.as_numpy("completion_tokens")[0]) <= 24
        assert int(final.as_numpy("prompt_tokens")[0]) > 0
    finally:
        await client.close()


async def test_chat_model_rejects_malformed_messages(stack: Stack) -> None:
    client = triton.InferenceServerClient(stack.triton_grpc_url)
    try:
        request = {"model_name": stack.chat_model, "inputs": [_bytes_input("messages", [b"not json"], [1])]}

        async def one_request() -> AsyncIterator[dict[str, Any]]:
            yield request

        errors = []
        async with asyncio.timeout(30):
            async for _result, error in client.stream_infer(one_request()):
                if error is not None:
                    errors.append(str(error))
        assert errors and "messages is not JSON" in errors[0]
    finally:
        await client.close()


async def test_inference_client_calls_batched_and_streaming_models_alike(stack: Stack) -> None:
    request = m.InferenceRequest(request_id="r-1", messages=[m.ChatTurn(role=m.ROLE_USER, content="one two three")])
    client = TritonClient(stack.triton_grpc_url, timeout_s=30)
    try:
        batched = ModelRoute(model="echo", kind="echo")
        streaming = ModelRoute(model="echo_stream", kind="echo")
        assert (await client.traits(batched)).batched and not (await client.traits(batched)).decoupled
        assert (await client.traits(streaming)).decoupled
        # The batched model answers in one piece, the decoupled one word by word.
        assert [p.text async for p in client.stream(batched, request, 8)] == ["echo: one two three"]
        assert [p.text async for p in client.stream(streaming, request, 8)] == ["one", " two", " three"]
    finally:
        await client.close()
