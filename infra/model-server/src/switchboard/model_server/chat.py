"""The local chat model: a GGUF model served through llama-cpp-python, streamed.

Triton model ``<chat_model_name>`` (decoupled), inputs:

* ``messages``     BYTES, a JSON list of ``{"role": ..., "content": ...}``
* ``max_tokens``   INT32, optional
* ``temperature``  FP32, optional (0 = greedy, deterministic)
* ``seed``         INT64, optional

Each response carries the next piece of ``text``; the last one also carries a
``finish_reason`` ("stop" or "length") and token counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp import Llama
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton

from switchboard.model_server.tensors import int_out, scalar_in, text_in, text_out

logger = logging.getLogger(__name__)

_DONE = object()
_ROLES = {"system", "user", "assistant"}


def parse_messages(raw: str) -> list[dict[str, str]]:
    """Validate the ``messages`` input; raises ValueError with a reason the client sees."""
    try:
        messages = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"messages is not JSON: {exc}") from exc
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty JSON list")
    for turn in messages:
        if not isinstance(turn, dict) or turn.get("role") not in _ROLES or not isinstance(turn.get("content"), str):
            raise ValueError('each message must be {"role": "system"|"user"|"assistant", "content": "<text>"}')
    return [{"role": turn["role"], "content": turn["content"]} for turn in messages]


class ChatModel:
    """Streams chat completions from one llama.cpp context (requests take turns on it)."""

    def __init__(self, model_path: Path, context_tokens: int, threads: int, default_max_tokens: int) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(
                f"chat model not found at {model_path}; run `make up` or set SB_TRITON_CHAT_MODEL_PATH"
            )
        self._llm = Llama(model_path=str(model_path), n_ctx=context_tokens, n_threads=threads, verbose=False)
        self._default_max_tokens = default_max_tokens
        self._lock = threading.Lock()

    async def __call__(self, requests: list[Any]) -> AsyncIterator[list[dict[str, np.ndarray]]]:
        """Triton inference callable (decoupled): yields one response per generated piece."""
        (request,) = requests
        messages = parse_messages(text_in(request, "messages"))
        max_tokens = int(scalar_in(request, "max_tokens", self._default_max_tokens))
        temperature = scalar_in(request, "temperature", 0.7)
        seed = int(scalar_in(request, "seed", -1))

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        worker = threading.Thread(
            target=self._generate,
            args=(loop, queue, messages, max_tokens, temperature, seed),
            name="llama-generate",
            daemon=True,
        )
        worker.start()
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield [item]

    def _generate(
        self,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> None:
        # llama.cpp blocks for each token, so it runs here and hands pieces to the event loop.
        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            with self._lock:
                finish_reason, pieces = "stop", 0
                stream = self._llm.create_chat_completion(
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed if seed >= 0 else None,
                    stream=True,
                )
                for chunk in stream:
                    choice = chunk["choices"][0]  # type: ignore[index]
                    piece = choice["delta"].get("content") or ""
                    if piece:
                        pieces += 1
                        put(self._response(piece))
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                prompt_tokens = max(0, self._llm.n_tokens - pieces)
            put(self._response("", finish_reason, prompt_tokens, pieces))
        except Exception as exc:
            logger.exception("generation failed")
            put(exc)
        finally:
            put(_DONE)

    @staticmethod
    def _response(
        text: str, finish_reason: str = "", prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> dict[str, np.ndarray]:
        return {
            "text": text_out(text),
            "finish_reason": text_out(finish_reason),
            "prompt_tokens": int_out(prompt_tokens),
            "completion_tokens": int_out(completion_tokens),
        }


def bind(triton: Triton, name: str, model: ChatModel) -> None:
    """Bind ``model`` to ``triton`` as decoupled model ``name``."""
    triton.bind(
        model_name=name,
        infer_func=model,
        inputs=[
            Tensor(name="messages", dtype=np.bytes_, shape=(1,)),
            Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True),
            Tensor(name="temperature", dtype=np.float32, shape=(1,), optional=True),
            Tensor(name="seed", dtype=np.int64, shape=(1,), optional=True),
        ],
        outputs=[
            Tensor(name="text", dtype=np.bytes_, shape=(1,)),
            Tensor(name="finish_reason", dtype=np.bytes_, shape=(1,)),
            Tensor(name="prompt_tokens", dtype=np.int32, shape=(1,)),
            Tensor(name="completion_tokens", dtype=np.int32, shape=(1,)),
        ],
        config=ModelConfig(batching=False, decoupled=True),
        strict=True,
    )
