"""Small test clips made with PyAV: a built-in sample panned and faded, with an AAC tone."""
from fractions import Fraction

import numpy as np

from modelzoo import samples

SIZE = (96, 128)  # height, width


def scene(frames, size=SIZE, pan=3, fade=0.5, flicker=0.0):
    """`frames` RGB frames: a window panning `pan` pixels a frame over a darkened sample, fading in by `fade`;
    `flicker` alternates the brightness by that fraction (a flickering light)."""
    import skimage.data

    photo = samples.darken(skimage.data.coffee()).astype(np.float32)
    h, w = size
    out = []
    for i in range(frames):
        window = photo[40:40 + h, 20 + pan * i:20 + pan * i + w]
        level = (1 - fade) + fade * i / max(frames - 1, 1)
        level *= 1 + flicker * (1 if i % 2 else -1)
        out.append(np.clip(window * level + 0.5, 0, 255).astype(np.uint8))
    return out


def write(path, frames, rate=25, pts=None, rotation=0, audio=True, codec="libx264"):
    """Encode `frames` to `path` (timestamps `pts` in 1/1000 s for a variable frame rate), with a 440 Hz tone."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        if pts is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=48000) if audio else None
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            else:
                frame.pts, frame.time_base = i, Fraction(1, rate)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            seconds = (pts[-1] / 1000 if pts is not None else len(frames) / rate)
            t = np.arange(int(48000 * seconds)) / 48000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = tone[start:start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate, frame.pts = 48000, start
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def read(path):
    """Frames (RGB), their timestamps in seconds, audio packet bytes, duration (s) and rotation of a clip."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times, rotation = [], [], None
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
            rotation = frame.rotation if rotation is None else rotation
        duration = container.duration / 1e6 if container.duration else None
    with av.open(str(path)) as container:
        audio = [bytes(p) for p in container.demux(audio=0) if p.size] if container.streams.audio else []
    return {"frames": frames, "times": times, "audio": audio, "duration": duration, "rotation": rotation}
