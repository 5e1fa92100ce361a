from switchboard.common import tracing


def test_new_traceparent_is_valid_and_unique() -> None:
    a, b = tracing.new_traceparent(), tracing.new_traceparent()
    assert tracing.is_valid(a) and tracing.is_valid(b)
    assert tracing.trace_id(a) != tracing.trace_id(b)


def test_invalid_traceparents_are_rejected() -> None:
    for bad in [
        "",
        "garbage",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # unknown version
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
    ]:
        assert not tracing.is_valid(bad), bad
        assert tracing.trace_id(bad) is None
