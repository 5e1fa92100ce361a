"""Inference benchmark: what Triton and the client cost, what batching buys, how fast the
local model answers.

    make up && .venv/bin/python scripts/bench_inference.py [--prompts 12] [--tokens 48]
        [--seconds 10] [--concurrency 32] [--json bench_inference.json]

On the stack's Triton (infra/model-server/models.yaml), in one run:

1. **Client overhead.** The same GGUF chat model, the same prompts, greedy, ``--tokens``
   each: called in this process (switchboard.model_server.llm, as the Triton backend calls
   it) and through Triton with the inference client's engine (tritonclient gRPC stream,
   routing, screening), interleaved prompt by prompt. Ratio of mean time per answer
   (target ≤ 1.1x).
2. **Batching.** ``--concurrency`` callers send the unary echo model requests for
   ``--seconds``: the dynamically batched ``echo`` (max batch 16, 2 ms queue delay) and
   ``echo_unbatched`` (loaded for the run through model control, unloaded after), both with
   two instances. Requests/s and the ratio.
3. **The local model.** Time to first token and tokens/s per answer through the engine
   (p50 over the prompts).

The in-process model and Triton's copy of it take turns, never run at once, so each has
the machine to itself while it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switchboard.events.v1 import messages_pb2 as m  # noqa: E402
from switchboard.inference_client.app import build_engine  # noqa: E402
from switchboard.inference_client.config import Route, Settings, Target  # noqa: E402
from switchboard.inference_client.triton import TritonClient  # noqa: E402
from switchboard.model_server.llm import ChatModel  # noqa: E402
from tests.conftest import load_stack  # noqa: E402

console = Console(width=120)
PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for sleeping better.",
    "Explain what a reminder app does.",
    "Write a haiku about the sea.",
    "How do I boil an egg?",
    "What is 12 times 12?",
    "Name a famous painter.",
    "Why is the sky blue?",
    "Suggest a name for a cat.",
    "What does a compiler do?",
    "Translate 'good morning' into French.",
    "How many days are in a leap year?",
]


def _ask(text: str, tokens: int, request_id: str) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id=request_id,
        messages=[m.ChatTurn(role=m.ROLE_USER, content=text)],
        params=m.GenerationParams(max_tokens=tokens, temperature=0.0),
    )


async def overhead_and_speed(args: argparse.Namespace, triton_url: str, model_path: Path) -> dict[str, Any]:
    local = ChatModel(model_path, context_tokens=2048, threads=args.threads, default_max_tokens=args.tokens)
    settings = Settings(routes={"general": Route(targets=[Target(model="smollm2")], cache=False)}, stream_interval_ms=0)
    client = TritonClient(triton_url, timeout_s=300)
    engine = build_engine(settings, client)
    prompts = (PROMPTS * ((args.prompts // len(PROMPTS)) + 1))[: args.prompts]
    in_process: list[float] = []
    via_triton: list[float] = []
    first_token: list[float] = []
    rates: list[float] = []
    tokens_each: list[int] = []
    try:
        await engine.generate(_ask("warm up", 4, "warm"), "warm", _ignore)  # loads the traits, warms the model
        list(local.generate([{"role": "user", "content": "warm up"}], 4, 0.0, -1))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("chat model: in process vs through Triton", total=len(prompts))
            for i, prompt in enumerate(prompts):
                started = time.perf_counter()
                pieces = list(local.generate([{"role": "user", "content": prompt}], args.tokens, 0.0, -1))
                in_process.append(time.perf_counter() - started)

                first: list[float] = []
                started = time.perf_counter()

                async def on_piece(_text: str, first: list[float] = first, started: float = started) -> None:
                    if not first:
                        first.append(time.perf_counter() - started)

                outcome = await engine.generate(_ask(prompt, args.tokens, f"bench-{i}"), f"bench-{i}", on_piece)
                elapsed = time.perf_counter() - started
                via_triton.append(elapsed)
                completion = outcome.usage.completion_tokens if outcome.usage else 0
                local_tokens = pieces[-1].completion_tokens
                if completion != local_tokens:
                    console.print(f"[yellow]prompt {i}: {completion} tokens via Triton, {local_tokens} in process")
                tokens_each.append(completion)
                first_token.append(first[0] if first else elapsed)
                if completion > 1 and first:
                    rates.append((completion - 1) / (elapsed - first[0]))
                progress.advance(task)
    finally:
        await engine.close()
        await client.close()
    return {
        "prompts": len(prompts),
        "tokens_per_answer_mean": statistics.mean(tokens_each),
        "in_process_s_mean": statistics.mean(in_process),
        "triton_s_mean": statistics.mean(via_triton),
        "overhead_ratio": statistics.mean(via_triton) / statistics.mean(in_process),
        "ttft_ms_p50": statistics.median(first_token) * 1000,
        "ttft_ms_max": max(first_token) * 1000,
        "tokens_per_s_p50": statistics.median(rates) if rates else 0.0,
    }


async def _ignore(_text: str) -> None:
    return None


async def throughput(triton_url: str, model: str, seconds: float, concurrency: int, progress: Progress) -> float:
    client = grpcclient.InferenceServerClient(triton_url)
    config = await client.get_model_config(model, as_json=True)
    batched = int(config["config"].get("max_batch_size", 0)) > 0
    shape = [1, 1] if batched else [1]
    done = 0
    stop_at = time.monotonic() + seconds
    task = progress.add_task(f"{model}: {concurrency} callers for {seconds:g} s", total=seconds)

    async def caller(n: int) -> None:
        nonlocal done
        tensor = grpcclient.InferInput("text", shape, "BYTES")
        tensor.set_data_from_numpy(np.array([f"caller {n}".encode()], dtype=np.object_).reshape(shape))
        while time.monotonic() < stop_at:
            await client.infer(model, [tensor])
            done += 1

    async def tick() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(0.25)
            progress.update(task, completed=seconds - max(0.0, stop_at - time.monotonic()))

    started = time.monotonic()
    try:
        await asyncio.gather(tick(), *(caller(n) for n in range(concurrency)))
    finally:
        await client.close()
    return done / (time.monotonic() - started)


async def batching(args: argparse.Namespace, triton_url: str) -> dict[str, float]:
    control = grpcclient.InferenceServerClient(triton_url)
    await control.load_model("echo_unbatched")
    try:
        with Progress(console=console, transient=True) as progress:
            # Warm both, then measure one after the other.
            await throughput(triton_url, "echo", 1, args.concurrency, progress)
            await throughput(triton_url, "echo_unbatched", 1, args.concurrency, progress)
            batched = await throughput(triton_url, "echo", args.seconds, args.concurrency, progress)
            unbatched = await throughput(triton_url, "echo_unbatched", args.seconds, args.concurrency, progress)
    finally:
        await control.unload_model("echo_unbatched")
        await control.close()
    return {"batched_rps": batched, "unbatched_rps": unbatched, "batching_ratio": batched / unbatched}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--tokens", type=int, default=48, help="tokens per answer (greedy)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per batching measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads in process (Triton's: 1 here)")
    parser.add_argument("--model", type=Path, default=ROOT / ".state/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    stack = load_stack()

    speed = await overhead_and_speed(args, stack.triton_grpc_url, args.model)
    batch = await batching(args, stack.triton_grpc_url)

    table = Table(title="Inference on the local Triton (CPU)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("target", justify="right")
    table.add_row(
        f"chat answer, in process ({speed['tokens_per_answer_mean']:.0f} tokens)",
        f"{speed['in_process_s_mean']:.3f} s",
        "",
    )
    table.add_row("chat answer, tritonclient + engine", f"{speed['triton_s_mean']:.3f} s", "")
    table.add_row("[bold]overhead ratio", f"[bold]{speed['overhead_ratio']:.3f}x", "≤ 1.10x")
    table.add_row(f"echo, dynamic batching, {args.concurrency} callers", f"{batch['batched_rps']:,.0f} req/s", "")
    table.add_row(f"echo, no batching, {args.concurrency} callers", f"{batch['unbatched_rps']:,.0f} req/s", "")
    table.add_row("[bold]batched / unbatched", f"[bold]{batch['batching_ratio']:.2f}x", "")
    table.add_row("time to first token, p50 / max", f"{speed['ttft_ms_p50']:.0f} / {speed['ttft_ms_max']:.0f} ms", "")
    table.add_row("tokens/s per answer, p50", f"{speed['tokens_per_s_p50']:.1f}", "")
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({**speed, **batch}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
