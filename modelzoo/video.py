"""Videos in, videos out, through the same engine as photos.

Decoding, enhancement and encoding run in three threads joined by bounded queues, so they overlap. Frames keep
their timestamps (variable frame rate included), so the clip keeps its duration; the rotation tag is copied;
audio and subtitle packets are copied untouched (never re-encoded). The video is H.264 by default. Output goes
to a hidden temporary file renamed when complete: an interrupted run leaves no half-written video.

Flicker: for each clip, the mean absolute frame-to-frame change of the luminance, relative to the frame's mean
level, of the output divided by that of the input. 1.0: the enhancement adds no flicker; a constant gain keeps
it at 1.0. `smoothing` (0 to 1) steadies the output's brightness: each output frame is rescaled, one factor per
channel, towards the mean level of the output frames around it (RADIUS before and after, same scene), with
weight `smoothing`. A centred window follows fades and slow changes exactly and removes frame-to-frame jumps;
one factor per channel and frame cannot ghost moving content nor amplify noise (a per-pixel gain did both); a
scene cut (the input's level jumps) bounds the window. It delays the output by RADIUS frames.

PyAV (its wheels carry FFmpeg) is the optional extra `video`: pip install "modelzoo[video]".
"""
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from modelzoo import imaging
from modelzoo.errors import ZooError

logger = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
CODECS = {"h264": "libx264", "h265": "libx265", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libaom-av1"}
QUEUE = 8  # frames in flight between two stages: bounded memory at any resolution
# x264/x265 speed preset: at 1280x720 x264 costs, in CPU ms a frame, "medium" 118, "veryfast" 21-47,
# "superfast" 15-27 (measured; by content): on 2 cores the encoder shares the CPU with the model, and crf keeps
# the quality: a faster preset only makes files larger
PRESET = "superfast"
# BT.601 limited range: the matrix FFmpeg's swscale uses for rgb24 -> yuv420p when nothing says otherwise (the
# decoder's to_ndarray(format="rgb24") undoes it); rows give Cb, Cr from R, G, B in 0..255, plus the offset
CHROMA = np.hstack([np.array([[-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], np.float32) / 255,
                    np.float32([[128], [128]])])
CUT = 0.3  # the input's level changing by 30% from one frame to the next is a new scene for the smoothing
RADIUS = 4  # frames on each side of the one the smoothing steadies
NOISE = 8.0  # pixel changes of about this many levels (of 255) between frames are noise to smoothing; larger, motion
LEVELS = np.arange(256, dtype=np.float32)[:, None, None]
DONE = object()


def is_video(path):
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_videos(path):
    path = Path(path)
    if path.is_file():
        return [path] if is_video(path) else []
    return sorted(p for p in path.iterdir() if p.is_file() and is_video(p) and not p.name.startswith("."))


def require_av():
    try:
        import av
    except ImportError:
        raise ZooError('videos need PyAV: pip install "modelzoo[video]"') from None
    return av


@dataclass
class Flicker:
    """Running flicker figures of one clip (see the module's doc)."""

    previous: dict = field(default_factory=dict)
    changes: dict = field(default_factory=lambda: {"input": [], "output": []})

    def add(self, kind, frame):
        luma = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), None, fx=0.25, fy=0.25,
                          interpolation=cv2.INTER_AREA).astype(np.float32)
        if kind in self.previous:
            before = self.previous[kind]
            level = max(float(luma.mean() + before.mean()) / 2, 1.0)
            self.changes[kind].append(float(np.abs(luma - before).mean()) / level)
        self.previous[kind] = luma

    def ratio(self):
        made, given = np.mean(self.changes["output"] or [0]), np.mean(self.changes["input"] or [0])
        return float(made / given) if given > 0 else None


@dataclass
class Pending:
    """A frame waiting for the frames after it, before the smoothing can steady it."""

    source: object  # the decoded frame (its timestamps)
    pixels: np.ndarray
    enhanced: np.ndarray
    scene: int
    level: np.ndarray  # the enhanced frame's mean of each channel, + 1


class Smoother:
    """Temporal smoothing of the output's brightness (see the module's doc): push frames in decoding order,
    get them back steadied, RADIUS frames later; flush at the end."""

    def __init__(self, strength, radius=RADIUS):
        self.strength, self.radius = float(strength), radius
        self.frames, self.next, self.scene, self.input_level = deque(), 0, 0, None
        self.previous, self.previous_scene = None, None  # the last frame given back, float32, and its scene
        self.weights = (self.strength * np.exp(-(np.arange(256, dtype=np.float32) / NOISE) ** 2)).astype(np.float32)

    def push(self, source, pixels, enhanced):
        """[(source, pixels, steadied)] of the frames now ready (none for the first RADIUS)."""
        given = float(np.mean(cv2.mean(pixels)[:3])) + 1.0
        if self.input_level is not None and abs(given - self.input_level) > CUT * self.input_level:
            self.scene += 1
        self.input_level = given
        level = np.array(cv2.mean(enhanced)[:3], dtype=np.float32) + 1.0
        self.frames.append(Pending(source, pixels, enhanced, self.scene, level))
        ready = []
        while len(self.frames) - self.next > self.radius:
            ready.append(self.steady())
        return ready

    def flush(self):
        return [self.steady() for _ in range(len(self.frames) - self.next)]

    def steady(self):
        frame = self.frames[self.next]
        window = [f.level for f in list(self.frames)[max(0, self.next - self.radius):self.next + self.radius + 1]
                  if f.scene == frame.scene]
        target = self.strength * np.mean(window, axis=0) + (1 - self.strength) * frame.level
        factor = np.clip(target / frame.level, 0.5, 2.0)
        table = np.clip(LEVELS * factor[None, None, :] + 0.5, 0, 255).astype(np.uint8)  # 256x1x3: one per channel
        self.next += 1
        while self.next > self.radius:  # only the RADIUS frames before the next one are still needed
            self.frames.popleft()
            self.next -= 1
        return frame.source, frame.pixels, self.denoise(cv2.LUT(frame.enhanced, table), frame.scene)

    def denoise(self, steadied, scene):
        """Each pixel moved towards its value in the previous output frame by up to `strength`, the less the
        more it changed (motion keeps its own value): the noise the model amplified stops flickering."""
        current = steadied.astype(np.float32)
        if self.previous is not None and self.previous_scene == scene:
            change = self.previous - current
            current += self.weights[np.minimum(np.abs(change), 255).astype(np.uint8)] * change
        self.previous, self.previous_scene = current, scene
        return np.clip(current + 0.5, 0, 255).astype(np.uint8)


def probe(av, source, limit=None):
    """The opened container and its video stream, or a one-line error naming the file."""
    source = Path(source)
    if not source.is_file():
        raise ZooError(f"{source}: file not found")
    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ZooError(f"{source}: not a readable video ({one_line(exc)})") from None
    if not container.streams.video:
        container.close()
        raise ZooError(f"{source}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads: decoding keeps up with the encoder
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise ZooError(f"{source}: its video codec is not supported by this FFmpeg build")
    width, height = stream.codec_context.width, stream.codec_context.height
    limit = limit or imaging.max_pixels()
    if width * height > limit:
        container.close()
        raise ZooError(f"{source}: {width}x{height} = {width * height:,} pixels per frame is above the limit of "
                       f"{limit:,} (--max-pixels)")
    return container, stream


def frame_size(source, limit=None):
    """(height, width) of the frames of `source` as decoded (before any rotation tag), checked like probe."""
    container, stream = probe(require_av(), source, limit)
    try:
        return stream.codec_context.height, stream.codec_context.width
    finally:
        container.close()


def one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def enhance_video(source, target, enhance, codec="h264", crf=18, smoothing=0.0, progress=None, limit=None):
    """Enhance every frame of `source` with `enhance` (RGB uint8 -> RGB uint8) into `target`.

    Returns {"frames", "seconds", "fps", "flicker", "flicker_input_output": ...}. `progress(frames_done, total)`
    is called after each frame.
    """
    av = require_av()
    target = Path(target)
    encoder = encoder_name(av, codec)
    container, stream = probe(av, source, limit)
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.part{target.suffix}")
    started = time.perf_counter()
    try:
        report = transcode(av, container, stream, temporary, enhance, encoder, crf, smoothing, progress)
        os.replace(temporary, target)
    except av.error.FFmpegError as exc:
        raise ZooError(f"{source}: {one_line(exc)}") from None
    finally:
        container.close()
        temporary.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return {**report, "seconds": round(seconds, 3), "fps": round(report["frames"] / seconds, 2) if seconds else None}


def encoder_name(av, codec):
    """The FFmpeg encoder for --codec, or a one-line error naming the choices."""
    name = CODECS.get(codec, codec)
    try:
        av.Codec(name, "w")
    except (ValueError, av.error.FFmpegError):
        raise ZooError(f"--codec {codec}: not a video encoder of this FFmpeg build (expected one of "
                       f"{', '.join(CODECS)} or an FFmpeg encoder name)") from None
    return name


def transcode(av, container, stream, temporary, enhance, encoder, crf, smoothing, progress):
    output = av.open(str(temporary), "w", format=container.format.name.split(",")[0] if
                     temporary.suffix.lower() not in (".mp4", ".mov", ".m4v", ".mkv", ".webm") else None)
    try:
        video = output.add_stream(encoder, rate=stream.average_rate or Fraction(25))
        video.width, video.height = stream.codec_context.width, stream.codec_context.height
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = stream.time_base  # every timestamp kept exactly (VFR)
        if encoder in ("libx264", "libx265"):
            video.options = {"crf": str(crf), "preset": PRESET}
        rotation = first_rotation(av, container.name)
        if rotation:  # before the first packet: the header carries it
            video.set_display_rotation(rotation)
        copied = {s.index: output.add_stream_from_template(s) for s in container.streams
                  if s.type in ("audio", "subtitle")}
        flicker, smoother = Flicker(), Smoother(smoothing) if smoothing > 0 else None
        frames = pipeline(av, container, stream, copied, enhance, flicker, smoother, video, output, progress)
        for packet in video.encode():
            output.mux(packet)
    finally:
        output.close()
    return {"frames": frames, "flicker": flicker.ratio(), "smoothing": smoothing}


def pipeline(av, container, stream, copied, enhance, flicker, smoother, video, output, progress):
    """Decode (thread) -> enhance (thread) -> encode and mux (here), in container order; returns frames written."""
    decoded, enhanced = queue.Queue(QUEUE), queue.Queue(QUEUE)
    failure = []
    total = stream.frames or None

    def decode():
        try:
            for packet in container.demux([stream, *[s for s in container.streams if s.index in copied]]):
                if packet.stream.index in copied:
                    if packet.dts is not None:
                        decoded.put(("packet", packet))
                    continue
                for frame in packet.decode():
                    decoded.put(("frame", frame))
        except Exception as exc:  # reported by the main thread as a one-line error
            failure.append(exc)
        decoded.put(DONE)

    def finish(ready):
        for frame, pixels, result in ready:
            flicker.add("input", pixels)
            flicker.add("output", result)
            enhanced.put(("frame", frame, yuv420(result)))

    def work():
        try:
            while (item := decoded.get()) is not DONE:
                if item[0] == "frame" and not failure:
                    frame = item[1]
                    pixels = frame.to_ndarray(format="rgb24")
                    result = enhance(pixels)
                    finish(smoother.push(frame, pixels, result) if smoother else [(frame, pixels, result)])
                else:
                    enhanced.put(item)
            if smoother is not None and not failure:
                finish(smoother.flush())
        except Exception as exc:
            failure.append(exc)
            while decoded.get() is not DONE:  # let the decoder finish
                pass
        enhanced.put(DONE)

    threads = [threading.Thread(target=decode, daemon=True), threading.Thread(target=work, daemon=True)]
    for thread in threads:
        thread.start()
    frames = 0
    while (item := enhanced.get()) is not DONE:
        if failure:
            continue
        if item[0] == "packet":
            packet = item[1]
            packet.stream = copied[packet.stream.index]
            output.mux(packet)
            continue
        frame, planes = item[1], item[2]
        new = av_frame(av, frame, planes)
        for packet in video.encode(new):
            output.mux(packet)
        frames += 1
        if progress:
            progress(frames, total)
    for thread in threads:
        thread.join()
    if failure:
        raise failure[0] if isinstance(failure[0], ZooError) else ZooError(one_line(failure[0]))
    return frames


def first_rotation(av, name):
    """The display rotation (degrees) the first frame carries; PyAV decodes frames unrotated."""
    with av.open(name) as container:
        for frame in container.decode(video=0):
            return int(round(getattr(frame, "rotation", 0) or 0))
    return 0


def yuv420(pixels):
    """RGB uint8 -> the encoder's yuv420p planes (one (H*3/2)xW array), chroma averaged over 2x2 as swscale does;
    5x cheaper than swscale's conversion and done in the enhancing thread, beside the encoder. Odd sizes: RGB,
    left to swscale."""
    height, width = pixels.shape[:2]
    if height % 2 or width % 2:
        return np.ascontiguousarray(pixels)
    planes = np.empty((height * 3 // 2, width), np.uint8)
    planes[:height] = cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420)[:height]
    chroma = cv2.transform(cv2.resize(pixels, (width // 2, height // 2), interpolation=cv2.INTER_AREA), CHROMA)
    planes[height:height + height // 4] = chroma[..., 0].reshape(height // 4, width)
    planes[height + height // 4:] = chroma[..., 1].reshape(height // 4, width)
    return planes


def av_frame(av, source, planes):
    """A VideoFrame of yuv420 planes (or RGB), with the timestamps of the decoded frame `source`."""
    layout = "rgb24" if planes.ndim == 3 else "yuv420p"
    frame = av.VideoFrame.from_ndarray(planes, format=layout)
    frame.pts, frame.time_base = source.pts, source.time_base
    return frame
