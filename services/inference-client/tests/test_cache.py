from switchboard.events.v1 import messages_pb2 as m
from switchboard.inference_client.cache import Cached, ResponseCache, contextual
from switchboard.inference_client.config import Target


def _ask(*turns: tuple[int, str], temperature: float = 0.0) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="r",
        messages=[m.ChatTurn(role=role, content=text) for role, text in turns],  # type: ignore[arg-type]
        params=m.GenerationParams(temperature=temperature),
    )


ANSWER = Cached("4", m.FINISH_REASON_STOP, Target(model="chat", version="1"), m.Usage(completion_tokens=1))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_same_question_normalised_hits_and_other_parameters_miss() -> None:
    cache = ResponseCache(entries=10, ttl_s=60, allow_contextual=False)
    key = cache.key(_ask((m.ROLE_USER, "What is 2+2?")), "chat", 256)
    cache.put(key, ANSWER)
    assert cache.get(cache.key(_ask((m.ROLE_USER, "  what IS  2+2？ ")), "chat", 256)) == ANSWER  # noqa: RUF001
    assert cache.get(cache.key(_ask((m.ROLE_USER, "What is 2+2?"), temperature=0.5), "chat", 256)) is None
    assert cache.get(cache.key(_ask((m.ROLE_USER, "What is 2+2?")), "other-model", 256)) is None
    assert cache.get(cache.key(_ask((m.ROLE_USER, "What is 2+2?")), "chat", 64)) is None
    assert (cache.hits, cache.misses) == (1, 3)


def test_conversation_context_is_not_cached_unless_allowed() -> None:
    followup = _ask((m.ROLE_USER, "hi"), (m.ROLE_ASSISTANT, "hello"), (m.ROLE_USER, "and 2+2?"))
    assert contextual(followup) and not contextual(_ask((m.ROLE_SYSTEM, "be brief"), (m.ROLE_USER, "2+2?")))
    assert ResponseCache(10, 60, allow_contextual=False).key(followup, "chat", 256) is None
    assert ResponseCache(10, 60, allow_contextual=True).key(followup, "chat", 256) is not None


def test_entries_expire_and_the_cache_is_bounded() -> None:
    clock = Clock()
    cache = ResponseCache(entries=2, ttl_s=60, allow_contextual=False, clock=clock)
    keys = [cache.key(_ask((m.ROLE_USER, f"q{i}")), "chat", 256) for i in range(3)]
    for key in keys:
        cache.put(key, ANSWER)
    assert cache.get(keys[0]) is None and cache.get(keys[2]) == ANSWER  # the oldest made room
    clock.now = 61
    assert cache.get(keys[2]) is None


def test_a_zero_size_cache_caches_nothing() -> None:
    cache = ResponseCache(entries=0, ttl_s=60, allow_contextual=False)
    key = cache.key(_ask((m.ROLE_USER, "q")), "chat", 256)
    cache.put(key, ANSWER)
    assert key is None and cache.get(key) is None
