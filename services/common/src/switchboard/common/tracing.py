"""W3C Trace Context (https://www.w3.org/TR/trace-context/) helpers.

The current traceparent lives in a context variable so that log lines and produced
events pick it up without being passed around explicitly.
"""

from __future__ import annotations

import contextvars
import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16

current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_traceparent", default=None)


def new_traceparent() -> str:
    """Start a new sampled trace and return its traceparent."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def is_valid(traceparent: str) -> bool:
    """Whether ``traceparent`` is a well-formed version-00 traceparent."""
    match = _TRACEPARENT.match(traceparent)
    if match is None:
        return False
    return match.group(1) != _INVALID_TRACE_ID and match.group(2) != _INVALID_SPAN_ID


def trace_id(traceparent: str | None) -> str | None:
    """The 32-hex trace id of ``traceparent``, or None when it is missing or malformed."""
    if not traceparent or not is_valid(traceparent):
        return None
    return traceparent[3:35]
