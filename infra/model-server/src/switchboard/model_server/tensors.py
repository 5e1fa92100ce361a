"""Converting between Triton BYTES/number tensors and Python values."""

from __future__ import annotations

from typing import Any

import numpy as np


def text_in(request: Any, name: str) -> str:
    """The first element of a BYTES input, decoded as UTF-8."""
    value = request[name].reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def scalar_in(request: Any, name: str, default: float) -> float:
    """The first element of an optional numeric input, or ``default`` when absent."""
    if name not in request.data:
        return default
    return float(request[name].reshape(-1)[0])


def text_out(text: str) -> np.ndarray:
    """A one-element BYTES tensor."""
    return np.array([text.encode("utf-8")], dtype=np.bytes_)


def int_out(value: int) -> np.ndarray:
    """A one-element INT32 tensor."""
    return np.array([value], dtype=np.int32)
