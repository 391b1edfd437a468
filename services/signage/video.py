"""Uploaded videos made fit for the screens (PyAV, FFmpeg's libraries in its wheel): decoded enough to prove they
are the video they claim to be, written again without any metadata (an MP4's `udta` with its `©xyz` place of
shooting, a WebM's tags, encoder names, titles), and scaled down to fit the largest registered screen when they are
bigger. Scaling encodes every frame again on the node's CPU, inside the upload's request, so it is done for clips up to
`SCALE_FRAMES_MAX` frames (a minute at 30 fps, the length of a signage clip); a longer video bigger than the screens is
refused with the size to export it at. Pure functions of bytes: no NATS, no database."""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import av
import av.error

from towntip.kernel.contracts import signage as c

SECONDS_MAX = 600  # a signage video plays in a loop between other items: ten minutes is already long
SCALE_FRAMES_MAX = 1800  # frames a scale-down may encode within an upload (a minute at 30 fps)
FORMATS = {"video/mp4": ("mp4", "libx264"), "video/webm": ("webm", "libvpx")}
ENCODER_OPTIONS = {"libx264": {"crf": "23", "preset": "veryfast"},
                   "libvpx": {"crf": "10", "b": "2M", "deadline": "realtime", "cpu-used": "8"}}


def _even(n: float) -> int:
    """Encoders for yuv420p want even sides."""
    return max(2, int(n) // 2 * 2)


def probe(raw: bytes, mime: str) -> tuple[int, int, float, float]:
    """(width, height, seconds, frames per second) of the video, after decoding its first frame; refuses what is
    not a playable video of the type its first bytes named."""
    try:
        with av.open(io.BytesIO(raw), mode="r") as src:
            names = set((src.format.name or "").split(","))
            if not names & {"mp4", "mov", "matroska", "webm"} or ("webm" in names) != (mime == "video/webm"):
                raise c.UPLOAD_BROKEN(f"the file is a {src.format.name} container, not the {mime} its bytes began as")
            if not src.streams.video:
                raise c.UPLOAD_BROKEN("the file holds no video")
            stream = src.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = float(stream.average_rate or stream.guessed_rate or 30)
            seconds = (src.duration / av.time_base) if src.duration else \
                float((stream.duration or 0) * (stream.time_base or 0))
            first = next(iter(src.decode(stream)), None)
            if first is None or not width or not height:
                raise c.UPLOAD_BROKEN("no picture of the video could be decoded")
    except (av.error.FFmpegError, StopIteration, UnicodeDecodeError) as exc:
        raise c.UPLOAD_BROKEN(f"the video could not be read: {exc.__class__.__name__}") from exc
    if seconds > SECONDS_MAX:
        raise c.UPLOAD_TOO_LARGE(f"a video plays at most {SECONDS_MAX} s, this one {seconds:.0f} s")
    return width, height, seconds, rate


def clean(raw: bytes, mime: str, box: tuple[int, int]) -> tuple[bytes, int, int]:
    """The video written again with no metadata, scaled to fit `box` if bigger: (bytes, width, height)."""
    width, height, seconds, rate = probe(raw, mime)
    scale = min(box[0] / width, box[1] / height, 1.0)
    try:
        if scale >= 1.0:
            return _remux(raw, mime), width, height
        if seconds * rate > SCALE_FRAMES_MAX:
            raise c.UPLOAD_TOO_LARGE(
                f"a video larger than the screens ({width}x{height} > {box[0]}x{box[1]}) is scaled only up to "
                f"{SCALE_FRAMES_MAX} frames; export it at {_even(width * scale)}x{_even(height * scale)} or smaller")
        out_w, out_h = _even(width * scale), _even(height * scale)
        return _scale(raw, mime, out_w, out_h), out_w, out_h
    except av.error.FFmpegError as exc:
        raise c.UPLOAD_BROKEN(f"the video could not be written again: {exc.__class__.__name__}") from exc


def _copy_streams(src: Any, dst: Any, *, video: bool) -> dict[int, Any]:
    """Output streams copying the input's audio (and video, for a remux) as they are, with no metadata."""
    kinds = ("video", "audio") if video else ("audio",)
    mapping = {}
    for stream in src.streams:
        if stream.type in kinds:
            out = dst.add_stream_from_template(stream)
            out.metadata.clear()
            mapping[stream.index] = out
    return mapping


def _remux(raw: bytes, mime: str) -> bytes:
    fmt, _ = FORMATS[mime]
    buf = io.BytesIO()
    with av.open(io.BytesIO(raw), mode="r") as src, av.open(buf, mode="w", format=fmt) as dst:
        mapping = _copy_streams(src, dst, video=True)
        for packet in src.demux(*(s for s in src.streams if s.index in mapping)):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)
    return buf.getvalue()


def _scale(raw: bytes, mime: str, out_w: int, out_h: int) -> bytes:
    fmt, codec = FORMATS[mime]
    buf = io.BytesIO()
    with av.open(io.BytesIO(raw), mode="r") as src, av.open(buf, mode="w", format=fmt) as dst:
        vin = src.streams.video[0]
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        vout: Any = dst.add_stream(codec, rate=rate, options=ENCODER_OPTIONS[codec])
        vout.width, vout.height, vout.pix_fmt = out_w, out_h, "yuv420p"
        audio = _copy_streams(src, dst, video=False)
        for packet in src.demux(vin, *(s for s in src.streams if s.index in audio)):
            if packet.stream.index == vin.index:
                frame: Any
                for frame in packet.decode():
                    small = frame.reformat(width=out_w, height=out_h, format="yuv420p")
                    small.pts, small.time_base = frame.pts, frame.time_base
                    dst.mux(vout.encode(small))
            elif packet.dts is not None:
                packet.stream = audio[packet.stream.index]
                dst.mux(packet)
        dst.mux(vout.encode(None))
    return buf.getvalue()
