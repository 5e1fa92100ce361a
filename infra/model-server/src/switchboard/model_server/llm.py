"""The local chat model: a GGUF model run by llama-cpp-python, one piece at a time.

Independent of Triton (the ``chat`` backend in :mod:`models.chat` serves it), so it can be
used and tested on its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llama_cpp import Llama

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


@dataclass
class Piece:
    """The next piece of text; the last one (empty text) has the finish reason and counts."""

    text: str
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatModel:
    """Streams chat completions from one llama.cpp context (requests take turns on it)."""

    def __init__(self, model_path: Path, context_tokens: int, threads: int, default_max_tokens: int) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(
                f"chat model not found at {model_path}; run `make up` or set SB_TRITON_CHAT_MODEL_PATH"
            )
        self._llm = Llama(model_path=str(model_path), n_ctx=context_tokens, n_threads=threads, verbose=False)
        self.default_max_tokens = default_max_tokens
        self._lock = threading.Lock()

    def generate(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        seed: int,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[Piece]:
        """Yield the answer's pieces, then a final piece. Stops early (finish reason
        "cancelled") once ``cancelled()`` is true, so an abandoned request frees the model."""
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
                if cancelled():
                    finish_reason = "cancelled"
                    break
                choice = chunk["choices"][0]  # type: ignore[index]
                piece = choice["delta"].get("content") or ""
                if piece:
                    pieces += 1
                    yield Piece(piece)
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
            prompt_tokens = max(0, self._llm.n_tokens - pieces)
        yield Piece("", finish_reason, prompt_tokens, pieces)
