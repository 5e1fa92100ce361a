"""The hash that chains audit documents (the Elasticsearch side is in the integration tests)."""

import copy

from switchboard.audit_logger.chain import digest

DOC = {
    "@timestamp": "2026-11-24T10:00:00.000Z",
    "message": "你好",
    "event": {"id": "e-1", "action": "message.received"},
    "switchboard": {"chain": {"key": "t/0", "prev": "abc"}, "kafka": {"offset": 3}, "intent_confidence": 0.9},
}


def test_the_hash_covers_content_and_link_but_not_indexing_time_or_itself() -> None:
    base = digest(DOC)
    stamped = copy.deepcopy(DOC)
    stamped["event"] |= {"ingested": "2026-11-24T10:00:01.000Z", "hash": base}
    assert digest(stamped) == base
    for path, value in ((("message",), "hi"), (("switchboard", "chain", "prev"), "abd"), (("event", "action"), "x")):
        edited = copy.deepcopy(DOC)
        target = edited
        for part in path[:-1]:
            target = target[part]  # type: ignore[assignment]
        target[path[-1]] = value
        assert digest(edited) != base, path


def test_key_order_does_not_matter() -> None:
    reordered = {k: DOC[k] for k in reversed(list(DOC))}
    assert digest(reordered) == digest(DOC)
