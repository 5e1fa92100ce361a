"""What the gateway takes as a voice note or a picture, checked before anything is stored.

The type is read from the bytes, never from the file name or the client's Content-Type.
A voice note is decoded whole (PyAV, FFmpeg's decoders): one that cannot be decoded, is cut
off (an Ogg stream without its last page, a WebM shorter than it says) or is longer than
``max_voice_s`` is refused. A picture's type and size come from its header (Pillow), without
decoding its pixels: one larger than ``max_image_pixels`` (a "PNG bomb", a few kilobytes that
would inflate to gigabytes) or whose structure is damaged is refused. Every refusal is a
:class:`Rejected` with a reason the sender can act on.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import av
from PIL import Image

from switchboard.channel_gateway.rejections import Rejected
from switchboard.events.v1 import messages_pb2 as m

AUDIO_TYPES = "OGG/Opus, WebM/Opus, WAV, MP3 or M4A"
IMAGE_TYPES = "PNG, JPEG, WebP or GIF"
_IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_OGG_PAGE = struct.Struct("<4sBBqIIIB")  # capture pattern ... page segments (RFC 3533)
_OGG_END_OF_STREAM = 0x04


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_voice_s: float = 120.0
    max_image_pixels: int = 40_000_000


@dataclass(frozen=True)
class Checked:
    kind: m.MessageKind.ValueType
    mime_type: str
    duration_ms: int = 0  # a voice note's


def sniff(data: bytes) -> str | None:
    """The media type the bytes themselves say, or None."""
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data[4:8] == b"ftyp" and data[8:12] in (b"M4A ", b"mp42", b"isom", b"M4B "):
        return "audio/mp4"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def check(data: bytes, limits: MediaLimits) -> Checked:
    """The checked media, or :class:`Rejected` (413 too large, 415 not a type we read, 422 damaged or too long)."""
    if len(data) > limits.max_bytes:
        raise Rejected(413, f"the file is {len(data)} bytes; at most {limits.max_bytes} are taken")
    if not data:
        raise Rejected(422, "the file is empty")
    mime = sniff(data)
    if mime is None:
        raise Rejected(415, f"not a voice note ({AUDIO_TYPES}) or a picture ({IMAGE_TYPES})")
    if mime.startswith("image/"):
        return _image(data, limits)
    return _voice(data, mime, limits)


def _voice(data: bytes, mime: str, limits: MediaLimits) -> Checked:
    if mime == "audio/ogg" and not _ogg_complete(data):
        raise Rejected(422, "the voice note is cut off (its Ogg stream does not end); send it again")
    seconds = 0.0
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise Rejected(422, "the file has no sound")
            declared = container.duration / av.time_base if container.duration else None
            for frame in container.decode(audio=0):
                seconds += frame.samples / frame.sample_rate
                if seconds > limits.max_voice_s:
                    raise Rejected(422, f"the voice note is longer than {limits.max_voice_s:.0f} s")
    except av.FFmpegError as error:
        raise Rejected(
            422, f"the voice note could not be decoded ({error.strerror or type(error).__name__})"
        ) from error
    if seconds == 0:
        raise Rejected(422, "the voice note holds no sound")
    if declared is not None and seconds < declared - 0.5:
        raise Rejected(422, f"the voice note is cut off ({seconds:.1f} s of the {declared:.1f} s it says)")
    return Checked(m.MESSAGE_KIND_VOICE, mime, round(seconds * 1000))


def _ogg_complete(data: bytes) -> bool:
    """Whether the Ogg pages run to the end of the data and the last one ends the stream."""
    position, flags = 0, 0
    while position < len(data):
        if len(data) < position + _OGG_PAGE.size:
            return False
        capture, _, flags, *_, segments = _OGG_PAGE.unpack_from(data, position)
        table = position + _OGG_PAGE.size
        if capture != b"OggS" or len(data) < table + segments:
            return False
        position = table + segments + sum(data[table : table + segments])
    return position == len(data) and bool(flags & _OGG_END_OF_STREAM)


def _image(data: bytes, limits: MediaLimits) -> Checked:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > limits.max_image_pixels:
                raise Rejected(
                    422, f"the picture is {width} x {height} pixels; at most {limits.max_image_pixels} pixels are taken"
                )
            mime = _IMAGE_FORMATS.get(image.format or "")
            image.verify()  # the structure and checksums, without decoding the pixels
    except Image.DecompressionBombError as error:
        raise Rejected(422, f"the picture is too large to open ({error})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise Rejected(422, f"the picture is damaged ({error})") from error
    if mime is None:
        raise Rejected(415, f"not a picture we read ({IMAGE_TYPES})")
    return Checked(m.MESSAGE_KIND_IMAGE, mime)
