"""The keyed hash that chains audit documents, and the heads anchored from a batch (the
Elasticsearch and Kafka sides are in tests/integration/test_audit_indexer.py)."""

import copy

from switchboard.audit_logger.anchors import newest
from switchboard.audit_logger.chain import digest

KEY = b"a chain key of the test, 32 bytes"

DOC = {
    "@timestamp": "2026-11-24T10:00:00.000Z",
    "message": "你好",
    "event": {"id": "e-1", "action": "message.received"},
    "switchboard": {"chain": {"key": "t/0", "prev": "abc"}, "kafka": {"offset": 3}, "intent_confidence": 0.9},
}


def test_the_hash_covers_content_and_link_but_not_indexing_time_or_itself() -> None:
    base = digest(DOC, KEY)
    stamped = copy.deepcopy(DOC)
    stamped["event"] |= {"ingested": "2026-11-24T10:00:01.000Z", "hash": base}
    assert digest(stamped, KEY) == base
    for path, value in ((("message",), "hi"), (("switchboard", "chain", "prev"), "abd"), (("event", "action"), "x")):
        edited = copy.deepcopy(DOC)
        target = edited
        for part in path[:-1]:
            target = target[part]  # type: ignore[assignment]
        target[path[-1]] = value
        assert digest(edited, KEY) != base, path


def test_key_order_does_not_matter() -> None:
    reordered = {k: DOC[k] for k in reversed(list(DOC))}
    assert digest(reordered, KEY) == digest(DOC, KEY)


def test_without_the_key_the_hash_cannot_be_made() -> None:
    assert digest(DOC, KEY) != digest(DOC, b"another key of 32 bytes, guessed")


def test_the_anchored_heads_are_each_chains_newest_document() -> None:
    docs = []
    for chain, offset in (("t/0", 4), ("t/1", 9), ("t/0", 7), ("t/0", 5)):
        doc = copy.deepcopy(DOC)
        doc["switchboard"]["chain"]["key"] = chain
        doc["switchboard"]["kafka"]["offset"] = offset
        doc["event"]["hash"] = f"{chain}@{offset}"
        docs.append(doc)
    assert newest(docs) == {"t/0": (7, "t/0@7"), "t/1": (9, "t/1@9")}
