import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as triton
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tritonclient.grpc import InferResult

from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import ConsumedEvent, EventProducer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client.app import InferenceWorker, build_engine
from switchboard.inference_client.config import Route, Settings, Target
from switchboard.inference_client.ledger import Ledger
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
        batched = Target(model="echo", kind="echo")
        streaming = Target(model="echo_stream", kind="echo")
        assert (await client.traits(batched)).batched and not (await client.traits(batched)).decoupled
        assert (await client.traits(streaming)).decoupled
        # The batched model answers in one piece, the decoupled one word by word.
        assert [p.text async for p in client.stream(batched, request, 8)] == ["echo: one two three"]
        assert [p.text async for p in client.stream(streaming, request, 8)] == ["one", " two", " three"]
    finally:
        await client.close()


async def test_the_worker_honours_deadlines_while_waiting_for_a_slot_and_while_streaming(
    stack: Stack, unique: str
) -> None:
    """One slot: a long chat answer holds it. A request whose deadline passes while it waits
    for the slot, one whose deadline passed before it came, and the long one cut off by its
    own deadline mid-stream are each answered DEADLINE_EXCEEDED, with what was streamed."""
    results_topic = f"test.results.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(results_topic, 1, 1)])
    kafka = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)
    settings = Settings(
        kafka=kafka,
        topics={"results": results_topic},  # type: ignore[arg-type]
        routes={"general": Route(targets=[Target(model=stack.chat_model)], cache=False)},
        max_concurrency=1,
        default_max_tokens=200,
    )
    client = TritonClient(stack.triton_grpc_url, timeout_s=60)

    def ask(request_id: str, priority: int) -> m.InferenceRequest:
        return m.InferenceRequest(
            request_id=request_id,
            priority=priority,  # type: ignore[arg-type]
            messages=[m.ChatTurn(role=m.ROLE_USER, content="Tell me a long story about a lighthouse keeper.")],
            params=m.GenerationParams(max_tokens=200),
        )

    def request(request_id: str, deadline_s: float, priority: int) -> ConsumedEvent:
        question = ask(request_id, priority)
        question.deadline.FromDatetime(datetime.now(UTC) + timedelta(seconds=deadline_s))
        envelope = events.wrap(question, conversation_key=request_id, source="test")
        return ConsumedEvent(envelope=envelope, topic="t", partition=0, offset=0, key=None, headers=[])

    # The long request's deadline must fall after its first piece and before its last: a fixed
    # 1 s once fell before the first piece on a loaded machine. Time the same answer once (which
    # also warms the model) and put the deadline halfway between the first piece and the end.
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_piece_s = 0.0
    async for piece in client.stream(Target(model=stack.chat_model), ask("timing", m.PRIORITY_ROUTINE), 200):
        if piece.text and not first_piece_s:
            first_piece_s = loop.time() - started
    whole_s = loop.time() - started
    assert whole_s - first_piece_s > 0.5, (
        f"the answer streams too briefly to cut it mid-way: {first_piece_s=} {whole_s=}"
    )
    long_deadline_s = (first_piece_s + whole_s) / 2

    try:
        async with EventProducer(kafka) as producer:
            # The worker needs only the runtime's producer (a real one, on the real broker).
            runtime = SimpleNamespace(producer=producer)
            worker = InferenceWorker(settings, runtime, build_engine(settings, client), Ledger(60))  # type: ignore[arg-type]
            long = asyncio.create_task(worker.handle(request("long", long_deadline_s, m.PRIORITY_ROUTINE)))
            await asyncio.sleep(0.2)  # it holds the only slot
            # Its deadline passes while the long one still holds the slot (long_deadline_s > 0.25).
            await worker.handle(request("waiting", (long_deadline_s - 0.2) / 2, m.PRIORITY_URGENT))
            await worker.handle(request("late", -1.0, m.PRIORITY_URGENT))
            await long
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(results_topic, 0)])
            found: dict[str, m.InferenceResult] = {}
            async with asyncio.timeout(30):
                while len(found) < 3:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        for record in records:
                            envelope = envelope_pb2.Envelope.FromString(record.value)
                            if envelope.WhichOneof("payload") == "inference_result":
                                found[envelope.inference_result.request_id] = envelope.inference_result
        finally:
            await consumer.stop()
    finally:
        await client.close()
        await admin.delete_topics([results_topic])
        await admin.close()
    assert {r: found[r].finish_reason for r in found} == {
        "long": m.FINISH_REASON_DEADLINE_EXCEEDED,
        "waiting": m.FINISH_REASON_DEADLINE_EXCEEDED,
        "late": m.FINISH_REASON_DEADLINE_EXCEEDED,
    }, {r: (m.FinishReason.Name(f.finish_reason), f.error, f.latency_ms) for r, f in found.items()}
    assert found["waiting"].error == found["late"].error == "deadline passed before an answer"
    assert found["waiting"].text == "" and found["late"].text == ""
    assert found["long"].error == "deadline passed after the answer began" and found["long"].text
