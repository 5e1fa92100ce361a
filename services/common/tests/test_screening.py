"""Screening a streamed text: a match split over pieces is caught before any of it leaves,
and each piece is checked with a bounded window, not the whole text so far."""

from switchboard.common.screening import StreamScreen, TextScreen, Verdict


class Counting(TextScreen):
    """The screen, counting the characters it is asked to check."""

    checked = 0

    def check(self, text: str) -> Verdict | None:
        Counting.checked += len(text)
        return super().check(text)


def _screen() -> Counting:
    return Counting([("self_harm", "kill yourself")], {"api_token": r"\bsk-[a-z0-9]{20,}\b"}, "output")


def _stream(text: str, size: int, hold: int = 64) -> tuple[Verdict | None, str]:
    stream = StreamScreen(_screen(), hold)
    released = []
    for start in range(0, len(text), size):
        verdict, out = stream.feed(text[start : start + size])
        released.append(out)
        if verdict is not None:
            return verdict, "".join(released)
    return None, "".join(released) + stream.finish()


def test_a_match_split_into_one_character_pieces_is_caught_before_any_of_it_leaves() -> None:
    text = "a harmless start. " * 20 + "here it is: sk-" + "a1" * 15 + " and after"
    verdict, released = _stream(text, size=1)
    assert verdict is not None and verdict.rule == "output:api_token"
    assert text.startswith(released) and "sk" not in released and len(released) > 300
    verdict, released = _stream("please don't kill yourself", size=3)
    assert verdict is not None and released == ""


def test_a_clean_text_leaves_whole_and_in_order() -> None:
    text = "".join(f"sentence {i} is fine. " for i in range(500))
    assert _stream(text, size=7) == (None, text)


def test_each_piece_is_checked_with_a_bounded_window() -> None:
    Counting.checked = 0
    text = "x" * 100_000
    assert _stream(text, size=4) == (None, text)
    assert Counting.checked <= (64 + 4) * (100_000 // 4)  # the whole text so far: about 1.25e9
