"""Voice notes and pictures made at test time by real encoders: Opus through PyAV (FFmpeg's
libopus) in an Ogg or WebM container, PNG / JPEG / WebP through Pillow."""

from __future__ import annotations

import io
import math

import av
import numpy as np
from PIL import Image


def voice(container: str, seconds: float, rate: int = 48000) -> bytes:
    """A 440 Hz tone of ``seconds`` encoded with Opus in an Ogg (``"ogg"``) or WebM container."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream("libopus", rate=rate, layout="mono")
        samples = (0.3 * np.sin(2 * math.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
        for start in range(0, len(samples), 960):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 960], format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def picture(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """A plain picture of ``size`` pixels in ``fmt``; mode "1" makes a huge one compress to kilobytes."""
    buffer = io.BytesIO()
    Image.new(mode, size, "white").save(buffer, fmt)
    return buffer.getvalue()
