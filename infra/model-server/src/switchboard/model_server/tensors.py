"""Reading and writing the tensors of Triton Python-backend requests.

Only importable inside Triton's Python backend stub (``triton_python_backend_utils``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


def text_in(request: Any, name: str) -> str:
    """The first element of a BYTES input, decoded as UTF-8."""
    value = pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def scalar_in(request: Any, name: str, default: float) -> float:
    """The first element of an optional numeric input, or ``default`` when absent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    return float(tensor.as_numpy().reshape(-1)[0])


def text_out(name: str, text: str) -> Any:
    """A one-element BYTES tensor."""
    return pb_utils.Tensor(name, np.array([text.encode("utf-8")], dtype=np.object_))


def int_out(name: str, value: int) -> Any:
    """A one-element INT32 tensor."""
    return pb_utils.Tensor(name, np.array([value], dtype=np.int32))
