"""The inference client's engine and worker against the real local Triton (and Kafka):
streaming order, canary split, hot switch under load, fallback, circuit breaker, cache,
output screening, and one reply per request id.

The stand-by models `echo_next` and `echo_stream_next` (infra/model-server/models.yaml) are
not loaded at start; these tests load and unload them through Triton's model-control API.
"""

import asyncio
import io
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import tritonclient.grpc.aio as grpcclient
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console

from switchboard.cli import models as cli_models
from switchboard.common import events
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import ConsumedEvent, EventProducer
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference.v1 import inference_pb2 as api
from switchboard.inference.v1 import inference_pb2_grpc as api_grpc
from switchboard.inference_client import grpc_api, routes_file
from switchboard.inference_client.app import InferenceWorker, build_engine
from switchboard.inference_client.breaker import State
from switchboard.inference_client.config import Route, Settings, Target
from switchboard.inference_client.engine import Engine, Outcome
from switchboard.inference_client.ledger import Ledger
from switchboard.inference_client.triton import TritonClient
from tests.conftest import Stack

pytestmark = pytest.mark.integration

ECHO = Target(model="echo", kind="echo")
NEXT = Target(model="echo_next", kind="echo")
SLOW_STREAM = Target(model="echo_stream_next", kind="echo")
STANDBY = ("echo_next", "echo_stream_next", "echo_unbatched")


@pytest.fixture
async def triton(stack: Stack) -> AsyncIterator[TritonClient]:
    client = TritonClient(stack.triton_grpc_url, timeout_s=30)
    yield client
    for model in STANDBY:  # leave the server as it started
        if await client.ready(model):
            await client.unload(model)
    # Just after an unload Triton reports itself not ready for a moment; wait that out.
    raw = grpcclient.InferenceServerClient(stack.triton_grpc_url)
    try:
        async with asyncio.timeout(30):
            while not await raw.is_server_ready():
                await asyncio.sleep(0.1)
    finally:
        await raw.close()
        await client.close()


def _engine(triton: TritonClient, routes: dict[str, Route], **options: Any) -> Engine:
    return build_engine(Settings(routes=routes, **{"retry_backoff_s": 0.01, **options}), triton)


def _ask(text: str, request_id: str = "r") -> m.InferenceRequest:
    return m.InferenceRequest(request_id=request_id, messages=[m.ChatTurn(role=m.ROLE_USER, content=text)])


async def _generate(engine: Engine, text: str, key: str = "k") -> tuple[Outcome, list[str]]:
    pieces: list[str] = []

    async def on_piece(piece: str) -> None:
        pieces.append(piece)

    return await engine.generate(_ask(text, key), key, on_piece), pieces


async def _successes(stack: Stack, model: str, version: str = "") -> int:
    client = grpcclient.InferenceServerClient(stack.triton_grpc_url)
    try:
        stats = await client.get_inference_statistics(model, version, as_json=True)
    finally:
        await client.close()
    return sum(int(s["inference_stats"]["success"].get("count", 0)) for s in stats["model_stats"])


async def test_the_canary_gets_its_weight_of_2000_requests(stack: Stack, triton: TritonClient) -> None:
    """90/10 between versions 1 and 2 of one model; Triton's own per-version counts tell."""
    route = Route(
        targets=[
            Target(model="echo", version="1", kind="echo", weight=90),
            ECHO.model_copy(update={"version": "2", "weight": 10}),
        ],
        cache=False,
    )
    engine = _engine(triton, {"general": route}, max_concurrency=32)
    before = {v: await _successes(stack, "echo", v) for v in ("1", "2")}
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> Outcome:
        async with gate:
            return (await _generate(engine, f"question {i}", key=f"conversation-{i}"))[0]

    outcomes = await asyncio.gather(*(one(i) for i in range(2000)))
    assert all(o.reason == m.FINISH_REASON_STOP for o in outcomes)
    served = {v: await _successes(stack, "echo", v) - before[v] for v in ("1", "2")}
    assert served["1"] + served["2"] == 2000
    reported = sum(1 for o in outcomes if o.target is not None and o.target.version == "2")
    assert served["2"] == reported  # the version the client reports is the one that answered
    share = served["2"] / 2000
    assert abs(share - 0.10) <= 0.05, f"canary share {share:.3f}"  # within ±5 points of the weight
    print(f"canary share {share:.4f} of 2000 (weight 0.10)")


async def test_hot_switch_under_load_fails_no_request_and_finishes_streams_in_flight(
    triton: TritonClient,
) -> None:
    """Slow streams flow on echo_stream_next; mid-load the routes switch to echo_next and
    echo_stream_next is unloaded once this process no longer uses it."""
    engine = _engine(triton, {"general": Route(targets=[ECHO])}, max_concurrency=16)
    await engine.switch({"general": Route(targets=[SLOW_STREAM], cache=False)}, unload_unused=False)
    text = " ".join(f"w{i}" for i in range(10))  # ten words, 20 ms apart: ~200 ms a stream
    finished: list[tuple[float, float, Outcome, str]] = []
    done = asyncio.Event()

    async def client(n: int) -> None:
        i = 0
        while not done.is_set():
            started = time.monotonic()
            outcome, pieces = await _generate(engine, text, key=f"c{n}-{i}")
            finished.append((started, time.monotonic(), outcome, "".join(pieces)))
            i += 1

    load = asyncio.gather(*(client(n) for n in range(8)))
    await asyncio.sleep(1.0)
    switch_at = time.monotonic()
    unloaded = await engine.switch({"general": Route(targets=[NEXT], cache=False)}, unload_unused=True)
    # A second of load on the new route however long the switch took (on a busy machine the
    # switch once outlasted a fixed 3 s run, and nothing was left to land on the new model).
    await asyncio.sleep(1.0)
    done.set()
    async with asyncio.timeout(60):
        await load

    assert unloaded == ["echo_stream_next"]
    assert not await triton.ready("echo_stream_next") and await triton.ready("echo_next")
    failed = [o for _, _, o, _ in finished if o.reason != m.FINISH_REASON_STOP]
    assert failed == [], failed[:3]
    on_old = [(s, e, text_) for s, e, o, text_ in finished if o.target == SLOW_STREAM]
    on_new = [o for _, _, o, _ in finished if o.target == NEXT]
    assert on_old and on_new
    assert all(text_ == text for _, _, text_ in on_old)  # every stream complete, in order
    assert all(o.text == f"echo: {text}" for o in on_new)
    spanning = [1 for s, e, _ in on_old if s < switch_at < e]
    assert spanning, "no stream was in flight during the switch"
    print(f"hot switch: {len(finished)} requests, 0 failed, {len(spanning)} streams spanned it")


async def test_an_unloaded_primary_falls_back_and_the_breaker_opens_then_closes(triton: TritonClient) -> None:
    engine = _engine(
        triton,
        {"general": Route(targets=[NEXT], fallback=[ECHO], cache=False)},
        attempts_per_target=1,
        breaker_failures=3,
        breaker_reset_s=0.5,
    )
    assert not await triton.ready("echo_next")
    for i in range(3):
        outcome, _ = await _generate(engine, f"hello {i}")
        assert outcome.target == ECHO and outcome.text == f"echo: hello {i}"
        assert "echo_next" in outcome.failures[0] and "circuit" not in outcome.failures[0]
    assert engine.breaker(NEXT).state is State.OPEN
    outcome, _ = await _generate(engine, "hello 3")
    assert outcome.target == ECHO and outcome.failures == ["echo_next: circuit open"]

    await triton.load("echo_next")  # the primary is back; the breaker lets a trial through after its reset
    await asyncio.sleep(0.5)
    outcome, _ = await _generate(engine, "hello 4")
    assert outcome.target == NEXT and outcome.failures == []
    assert engine.breaker(NEXT).state is State.CLOSED


async def test_the_last_fallback_is_an_openai_compatible_endpoint(
    stack: Stack, triton: TritonClient, tmp_path: Path
) -> None:
    """echo_next is not loaded; the OpenAI-compatible server (the same local model) answers,
    with the key from a file. A wrong key is a failure like any other, named in the error."""
    endpoint = Target(
        model="smollm2", kind="openai", base_url=stack.openai_url, api_key_file=Path(stack.openai_api_key_file)
    )
    engine = _engine(
        triton, {"general": Route(targets=[NEXT], fallback=[endpoint], cache=False)}, attempts_per_target=1
    )
    request = _ask("Say hello.", "o-1")
    request.params.max_tokens = 8
    pieces: list[str] = []

    async def on_piece(piece: str) -> None:
        pieces.append(piece)

    outcome = await engine.generate(request, "k", on_piece)
    assert outcome.target == endpoint and outcome.reason in (m.FINISH_REASON_STOP, m.FINISH_REASON_LENGTH)
    assert outcome.text and "".join(pieces) == outcome.text and outcome.usage is not None
    assert outcome.failures and outcome.failures[0].startswith("echo_next:")

    wrong = tmp_path / "wrong-key"
    wrong.write_text("not-the-key")
    refused = endpoint.model_copy(update={"api_key_file": wrong})
    engine = _engine(triton, {"general": Route(targets=[refused], cache=False)}, attempts_per_target=1)
    outcome = await engine.generate(request, "k", on_piece)
    assert outcome.reason == m.FINISH_REASON_ERROR and "401" in outcome.error
    assert "not-the-key" not in outcome.error
    await engine.close()


async def test_a_primary_that_times_out_falls_back(triton: TritonClient) -> None:
    await triton.load("echo_stream_next")  # its first word comes after 20 ms
    impatient = SLOW_STREAM.model_copy(update={"first_piece_timeout_s": 0.005})
    engine = _engine(
        triton, {"general": Route(targets=[impatient], fallback=[ECHO], cache=False)}, attempts_per_target=1
    )
    outcome, _ = await _generate(engine, "slow words here")
    assert outcome.target == ECHO and outcome.failures == ["echo_stream_next: no answer in time"]


async def test_a_repeated_question_is_a_cache_hit_that_calls_no_model(stack: Stack, triton: TritonClient) -> None:
    engine = _engine(triton, {"general": Route(targets=[ECHO])})
    before = await _successes(stack, "echo")
    first, _ = await _generate(engine, "What is the capital of France?")
    again, pieces = await _generate(engine, "what is the capital of  FRANCE?")
    assert await _successes(stack, "echo") - before == 1
    assert not first.cached and again.cached and again.text == first.text and pieces == []
    assert (engine.cache.hits, engine.cache.misses) == (1, 1)


async def test_the_routes_file_hot_switches_the_running_engine(tmp_path: Path, triton: TritonClient) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  general: {model: echo, kind: echo}\n")
    engine = _engine(triton, routes_file.read(path))
    stop = asyncio.Event()
    follower = asyncio.create_task(routes_file.follow(path, engine, stop, 0.05, unload_unused=False))
    try:
        assert (await _generate(engine, "one"))[0].target == ECHO
        path.write_text("routes: {general: [not, a, route]}\n")  # ignored, logged
        await asyncio.sleep(0.2)
        assert (await _generate(engine, "two"))[0].target == ECHO
        path.write_text("routes:\n  general: {model: echo_next, kind: echo, weight: 1}\n")
        async with asyncio.timeout(20):
            while (await _generate(engine, f"three {time.monotonic()}"))[0].target != NEXT:
                await asyncio.sleep(0.05)
        assert await triton.ready("echo_next")  # loaded by the switch
    finally:
        stop.set()
        await follower


async def _records(bootstrap: str, topic: str, want: int, timeout_s: float = 20) -> list[envelope_pb2.Envelope]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[envelope_pb2.Envelope] = []
    try:
        consumer.assign([TopicPartition(topic, 0)])
        async with asyncio.timeout(timeout_s):
            while len(found) < want:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found += [envelope_pb2.Envelope.FromString(r.value) for r in records]
        # Anything more (a second reply) would arrive now.
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            found += [envelope_pb2.Envelope.FromString(r.value) for r in records]
    finally:
        await consumer.stop()
    return found


async def test_the_worker_streams_in_order_answers_a_request_id_once_and_audits_blocked_output(
    stack: Stack, triton: TritonClient, unique: str
) -> None:
    results, audit = f"test.results.{unique}", f"test.audit.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(results, 1, 1), NewTopic(audit, 1, 1)])
    kafka = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)
    settings = Settings(
        kafka=kafka,
        topics={"results": results, "audit": audit},  # type: ignore[arg-type]
        routes={"general": Route(targets=[Target(model="echo_stream", kind="echo")], cache=False)},
        stream_interval_ms=0,  # every piece released by the screening a chunk
    )
    words = " ".join(f"word{i}" for i in range(30))

    def event(request_id: str, text: str) -> ConsumedEvent:
        envelope = events.wrap(_ask(text, request_id), conversation_key=f"conv-{request_id}", source="test")
        return ConsumedEvent(envelope=envelope, topic="t", partition=0, offset=0, key=None, headers=[])

    try:
        async with EventProducer(kafka) as producer:
            runtime = SimpleNamespace(producer=producer)
            worker = InferenceWorker(settings, runtime, build_engine(settings, triton), Ledger(600))  # type: ignore[arg-type]
            await worker.handle(event("stream", words))
            await worker.handle(event("stream", words))  # redelivered: no second answer
            await worker.handle(event("blocked", "you should kill yourself right now"))
            # A restarted worker learns what was answered from the results topic.
            ledger = Ledger(600)
            assert await ledger.load(kafka, results) == 2
            restarted = InferenceWorker(settings, runtime, build_engine(settings, triton), ledger)  # type: ignore[arg-type]
            await restarted.handle(event("stream", words))
        # At least a chunk and the result of "stream" and the result of "blocked"; all of them
        # are on the topic by now (the worker waits for the acknowledgements).
        found = await _records(stack.kafka_bootstrap, results, want=3)
        audited = await _records(stack.kafka_bootstrap, audit, want=1)
    finally:
        await admin.delete_topics([results, audit])
        await admin.close()

    stream = [e for e in found if e.inference_chunk.request_id == "stream" or e.inference_result.request_id == "stream"]
    chunks = [e.inference_chunk for e in stream if e.WhichOneof("payload") == "inference_chunk"]
    finals = [e.inference_result for e in stream if e.WhichOneof("payload") == "inference_result"]
    # Gap-free, in order, once: the first 48 characters were held back for screening, then
    # each word left as the next came, and the held tail at the end.
    assert [c.sequence for c in chunks] == list(range(len(chunks))) and len(chunks) > 20
    assert len(finals) == 1 and finals[0].text == words == "".join(c.text for c in chunks)
    assert finals[0].chunk_count == len(chunks) and finals[0].model_name == "echo_stream"

    blocked = [e.inference_result for e in found if e.inference_result.request_id == "blocked"]
    blocked_chunks = "".join(e.inference_chunk.text for e in found if e.inference_chunk.request_id == "blocked")
    assert len(blocked) == 1 and blocked[0].finish_reason == m.FINISH_REASON_BLOCKED
    assert blocked[0].text == "Sorry, I can't share that answer." and blocked_chunks == ""  # not even "kill"
    (record,) = audited
    assert record.audit_event.action == "output.blocked" and record.audit_event.reason == "lexicon:self_harm"
    assert record.audit_event.labels["request_id"] == "blocked"


async def test_the_grpc_api_generates_streams_rejects_and_screens(triton: TritonClient) -> None:
    engine = _engine(triton, {"general": Route(targets=[Target(model="echo_stream", kind="echo")], cache=False)})
    outcomes: list[tuple[str, str, Outcome]] = []

    async def on_outcome(caller: str, request: m.InferenceRequest, outcome: Outcome) -> None:
        outcomes.append((caller, request.request_id, outcome))

    token = secrets.token_urlsafe(32)
    service = grpc_api.InferenceApi(engine, on_outcome, {"reports": token}, max_tokens=64)
    server, port = await grpc_api.start(service, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = api_grpc.InferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    auth = (("authorization", f"Bearer {token}"),)
    try:
        # No token, another token, a token in the wrong scheme: refused before any work.
        for metadata in ((), (("authorization", f"Bearer {token}x"),), (("authorization", f"Basic {token}"),)):
            for call in (
                stub.Generate(api.GenerateRequest(request=_ask("hi", "u-1")), timeout=10, metadata=metadata),
                _drain(stub.GenerateStream(api.GenerateStreamRequest(request=_ask("hi", "u-2")), metadata=metadata)),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert outcomes == []

        reply = await stub.Generate(
            api.GenerateRequest(request=_ask("one two three", "g-1")), timeout=10, metadata=auth
        )
        assert reply.result.text == "one two three" and reply.result.finish_reason == m.FINISH_REASON_STOP
        assert reply.result.model_name == "echo_stream" and reply.result.request_id == "g-1"

        # Longer than the 48 characters held back for screening, so that it streams.
        text = " ".join(f"word{i}" for i in range(30))
        stream = stub.GenerateStream(api.GenerateStreamRequest(request=_ask(text, "s-1")), timeout=10, metadata=auth)
        items = await _drain(stream)
        chunks = [i.chunk for i in items[:-1]]
        assert [c.sequence for c in chunks] == list(range(len(chunks))) and len(chunks) >= 2
        assert "".join(c.text for c in chunks) == text
        assert items[-1].WhichOneof("item") == "result" and items[-1].result.chunk_count == len(chunks)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Generate(api.GenerateRequest(request=m.InferenceRequest(request_id="empty")), metadata=auth)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "non-empty user turn" in (refused.value.details() or "")
        greedy = _ask("hi", "greedy")
        greedy.params.max_tokens = 65
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Generate(api.GenerateRequest(request=greedy), timeout=10, metadata=auth)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cap of 64" in (
            refused.value.details() or ""
        )

        blocked = await stub.Generate(api.GenerateRequest(request=_ask("go kill yourself", "b-1")), metadata=auth)
        assert blocked.result.finish_reason == m.FINISH_REASON_BLOCKED
        assert blocked.result.text == "Sorry, I can't share that answer."

        # Without a request id one is made; the gRPC deadline becomes the request's deadline.
        timed = await stub.Generate(api.GenerateRequest(request=_ask("x", "")), timeout=10, metadata=auth)
        assert timed.result.request_id
        # Every answered call reached the audit hook, with its caller's name.
        assert [(caller, rid) for caller, rid, _ in outcomes] == [
            ("reports", "g-1"),
            ("reports", "s-1"),
            ("reports", "b-1"),
            ("reports", timed.result.request_id),
        ]
        assert [o.blocked_rule for _, rid, o in outcomes if rid == "b-1"] == ["lexicon:self_harm"]
    finally:
        await channel.close()
        await server.stop(0)


async def _drain(call: AsyncIterator[api.GenerateStreamResponse]) -> list[api.GenerateStreamResponse]:
    return [item async for item in call]


async def test_the_cli_lists_loads_and_unloads_models(stack: Stack, triton: TritonClient) -> None:
    """`switchboard models` against Triton's HTTP repository API (the operator's unload)."""
    http_url = stack.triton_http_url
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert await asyncio.to_thread(cli_models.change, http_url, "load", "echo_next", console) == 0
    assert await triton.ready("echo_next")
    assert await asyncio.to_thread(cli_models.show, http_url, console) == 0
    listing = out.getvalue()
    assert "echo_next" in listing and "READY" in listing and "echo_unbatched" in listing
    assert await asyncio.to_thread(cli_models.change, http_url, "unload", "echo_next", console) == 0
    assert not await triton.ready("echo_next")
    assert await asyncio.to_thread(cli_models.change, http_url, "load", "no_such_model", console) == 1
    assert "no_such_model: load failed" in out.getvalue()
