import json
import logging

from switchboard.common import tracing
from switchboard.common.logging import JsonFormatter


def _format(record_kwargs: dict[str, object], **extra: object) -> dict[str, object]:
    record = logging.makeLogRecord({"name": "svc.mod", "levelname": "INFO", "levelno": 20, **record_kwargs})
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter("intent-parser").format(record))  # type: ignore[no-any-return]


def test_json_line_has_standard_fields_and_extras() -> None:
    doc = _format({"msg": "handled %s", "args": ("x",)}, event_id="e-1")
    assert doc["message"] == "handled x"
    assert doc["severity"] == "INFO" and doc["service"] == "intent-parser" and doc["logger"] == "svc.mod"
    assert doc["event_id"] == "e-1"
    assert str(doc["timestamp"]).endswith("+00:00")
    assert "trace_id" not in doc


def test_trace_id_of_current_context_is_logged() -> None:
    traceparent = tracing.new_traceparent()
    token = tracing.current_traceparent.set(traceparent)
    try:
        doc = _format({"msg": "in a trace"})
    finally:
        tracing.current_traceparent.reset(token)
    assert doc["trace_id"] == tracing.trace_id(traceparent)


def test_exceptions_are_included() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        doc = _format({"msg": "failed", "exc_info": sys.exc_info()})
    assert "RuntimeError: boom" in str(doc["exception"])
