"""Voice notes and pictures as real encoders write them (tests/fakes/media.py), checked."""

from __future__ import annotations

import pytest

from switchboard.channel_gateway.media_checks import MediaLimits, check, sniff
from switchboard.channel_gateway.rejections import Rejected
from switchboard.events.v1 import messages_pb2 as m
from tests.fakes.media import picture, voice

LIMITS = MediaLimits(max_bytes=1_000_000, max_voice_s=20.0, max_image_pixels=40_000_000)


@pytest.mark.parametrize("container, mime", [("ogg", "audio/ogg"), ("webm", "audio/webm")])
def test_a_voice_note_is_taken_with_its_length(container: str, mime: str) -> None:
    checked = check(voice(container, 3.0), LIMITS)
    assert (checked.kind, checked.mime_type) == (m.MESSAGE_KIND_VOICE, mime)
    assert abs(checked.duration_ms - 3000) <= 40


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_a_picture_is_taken(fmt: str, mime: str) -> None:
    checked = check(picture((640, 480), fmt), LIMITS)
    assert (checked.kind, checked.mime_type, checked.duration_ms) == (m.MESSAGE_KIND_IMAGE, mime, 0)


@pytest.mark.parametrize("container", ["ogg", "webm"])
def test_a_cut_off_voice_note_is_refused(container: str) -> None:
    whole = voice(container, 3.0)
    with pytest.raises(Rejected, match="cut off") as refused:
        check(whole[: int(len(whole) * 0.6)], LIMITS)
    assert refused.value.status == 422


def test_a_voice_note_over_the_length_limit_is_refused() -> None:
    with pytest.raises(Rejected, match="longer than 20 s") as refused:
        check(voice("ogg", 25.0, rate=8000), LIMITS)
    assert refused.value.status == 422


def test_a_file_over_the_size_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(Rejected, match="at most 1000000") as refused:
        check(b"OggS" + bytes(LIMITS.max_bytes), LIMITS)
    assert refused.value.status == 413


def test_a_picture_bomb_is_refused_from_its_header() -> None:
    bomb = picture((8000, 6000), mode="1")  # 48 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(Rejected, match="8000 x 6000 pixels") as refused:
        check(bomb, LIMITS)
    assert refused.value.status == 422


def test_a_damaged_picture_is_refused() -> None:
    whole = picture((64, 64))
    with pytest.raises(Rejected, match="damaged") as refused:
        check(whole[:-20], LIMITS)
    assert refused.value.status == 422


@pytest.mark.parametrize("data", [b"hello, not media", b"%PDF-1.7\n", b"\x00" * 64])
def test_what_is_neither_voice_nor_picture_is_refused_by_its_bytes(data: bytes) -> None:
    assert sniff(data) is None
    with pytest.raises(Rejected, match="not a voice note") as refused:
        check(data, LIMITS)
    assert refused.value.status == 415


def test_an_ogg_stream_of_garbage_is_refused() -> None:
    with pytest.raises(Rejected) as refused:
        check(b"OggS" + bytes(500), LIMITS)
    assert refused.value.status == 422
