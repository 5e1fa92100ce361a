"""Chat completions from an OpenAI-compatible endpoint (the ``openai`` client), streamed as
the same pieces the Triton client yields. Retries are the engine's, not the client's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai

from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client import handlers
from switchboard.inference_client.config import Target
from switchboard.inference_client.triton import Piece


class OpenAIBackend:
    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._clients: dict[tuple[str, Path | None], openai.AsyncOpenAI] = {}

    def _client(self, target: Target) -> openai.AsyncOpenAI:
        key = (target.base_url, target.api_key_file)
        if key not in self._clients:
            api_key = target.api_key_file.read_text().strip() if target.api_key_file else "none"
            self._clients[key] = openai.AsyncOpenAI(
                base_url=target.base_url, api_key=api_key, timeout=self._timeout_s, max_retries=0
            )
        return self._clients[key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()

    async def stream(self, target: Target, request: m.InferenceRequest, max_tokens: int) -> AsyncIterator[Piece]:
        params = request.params
        stream = await self._client(target).chat.completions.create(
            model=target.model,
            messages=json.loads(handlers.chat_messages_json(request)),
            max_tokens=params.max_tokens or max_tokens,
            temperature=params.temperature,
            seed=params.seed or None,
            stream=True,
        )
        finish, completion = "stop", 0
        async with stream:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content:
                    completion += 1
                    yield Piece(text=choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
        # Streamed chunks are the completion's tokens here; the prompt's count is not sent.
        yield Piece(text="", finish_reason=finish, usage=m.Usage(completion_tokens=completion))
