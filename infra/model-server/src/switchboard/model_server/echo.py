"""Deterministic test models: their answers follow from their input alone.

``echo``         unary, dynamically batched: ``text`` -> ``"echo: " + text``.
``echo_stream``  decoupled: streams the whitespace-separated words of ``text`` back,
                 one response each, with its 0-based ``index``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton

from switchboard.model_server.tensors import int_out, text_in, text_out


def echo(requests: list[Any]) -> list[dict[str, np.ndarray]]:
    """Answer every row of every request with its text prefixed by ``echo: ``."""
    return [
        {"text": np.array([[b"echo: " + row] for row in request["text"].reshape(-1)], dtype=np.bytes_)}
        for request in requests
    ]


async def echo_stream(requests: list[Any]) -> AsyncIterator[list[dict[str, np.ndarray]]]:
    """Stream each word of the (single) request back as its own response."""
    (request,) = requests
    for index, word in enumerate(text_in(request, "text").split()):
        yield [{"text": text_out(word), "index": int_out(index)}]


def bind(triton: Triton) -> None:
    """Bind both test models to ``triton``."""
    text = Tensor(name="text", dtype=np.bytes_, shape=(1,))
    triton.bind(
        model_name="echo",
        infer_func=echo,
        inputs=[text],
        outputs=[Tensor(name="text", dtype=np.bytes_, shape=(1,))],
        config=ModelConfig(
            batching=True,
            max_batch_size=16,
            batcher=DynamicBatcher(max_queue_delay_microseconds=2000),
        ),
        strict=True,
    )
    triton.bind(
        model_name="echo_stream",
        infer_func=echo_stream,
        inputs=[text],
        outputs=[
            Tensor(name="text", dtype=np.bytes_, shape=(1,)),
            Tensor(name="index", dtype=np.int32, shape=(1,)),
        ],
        config=ModelConfig(batching=False, decoupled=True),
        strict=True,
    )
