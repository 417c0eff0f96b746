"""The Python API: `modelzoo.load(name)` gives an enhancer, `list_models()` and `card(name)` describe the zoo.

`open_enhancer` is the one place a compiled session is assembled (prepare, compile if needed, load); the CLI,
publish, the Ray engine and bench all go through it, so a library user gets exactly what `modelzoo run` does.
"""
import dataclasses
import functools
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from modelzoo import choose, imaging, runner, video
from modelzoo import compile as compiler
from modelzoo.backends import feed
from modelzoo.errors import ZooError
from modelzoo.plugins import registry as plugin_registry
from modelzoo.tiling import DEFAULT_TILE

logger = logging.getLogger(__name__)
ROUNDS = 2  # calls each contender of the automatic choice runs before the faster is kept


class Enhancer:
    """A model compiled for one build and backend, ready to enhance images.

    `enhancer(image)` takes an RGB uint8 HxWx3 numpy array, a path or a PIL image (or a list of them) and
    returns RGB uint8 of the same size, run with the runtime inputs and post-processed with the parameters given
    to `load` (the card's defaults otherwise) and rounded as `modelzoo run` writes it. `enhancer.raw(image)` gives the deploy
    outputs (a list of numpy arrays, batch of 1); `enhancer.card` is the validated card.
    """

    def __init__(self, model, job, session, params=None, native=False, tile=0, inputs=None):
        self.model, self._job, self.session = model, job, session
        self.reopen = None  # under the automatic choice: open_any for another image size (set by open_any)
        self.by_size = {}
        self.request = runner.Request(model, session, native=native, params=dict(params or {}), progress=False,
                                      tile=tile if native else 0, inputs=dict(inputs or {}))

    @property
    def job(self):
        """The compiled build in use (under the automatic choice, the contender that won once decided)."""
        return getattr(self.session, "job", self._job)

    @property
    def card(self):
        return self.model.card

    def __repr__(self):
        return f"<Enhancer {self.job.label}>"

    def raw(self, image):
        """The deploy outputs for one image, before post-processing."""
        return runner.infer(self.request, as_rgb(image))

    def __call__(self, image):
        if isinstance(image, (list, tuple)):
            return [self(one) for one in image]
        pixels = as_rgb(image)
        outputs = runner.infer(self.request, pixels)
        enhanced = runner.enhance(self.request, outputs, pixels.shape[:2], self.request.params)
        return imaging.quantize(enhanced, "round")

    def photo(self, photo, **settings):
        """An imaging.Photo (as `imaging.decode_photo` reads it; 16-bit pixels stay float) enhanced to float RGB
        in [0, 1] at its size: what `modelzoo run` encodes with `imaging.encode_photo`. Keywords override the
        post-processing parameters and runtime inputs given to `load`, checked against the card like `--set`."""
        request = self.request
        if settings:
            params, inputs = self.model.settings(settings, "load():")
            request = dataclasses.replace(request, params={**request.params, **params},
                                          inputs={**request.inputs, **inputs})
        outputs = runner.infer(request, photo.pixels)
        return runner.enhance(request, outputs, photo.size, request.params)


    def video(self, source, target, codec="h264", crf=18, smoothing=0.0, progress=None):
        """Enhance a video file into `target` (frame timing, rotation, audio and subtitles kept; see
        modelzoo.video); returns {"frames", "fps", "seconds", "flicker", "smoothing"}. Under the automatic
        choice the frames run on the build chosen for their size."""
        enhancer = self.for_size(video.frame_size(source))
        return video.enhance_video(source, target, enhancer, codec=codec, crf=crf, smoothing=smoothing,
                                   progress=progress)

    def for_size(self, size):
        """This enhancer, or, under the automatic choice, one on the build chosen for images of `size`
        (height, width) where that is another (bench results at a size nearer it rank the builds otherwise)."""
        size = tuple(size)
        if self.reopen is None:
            return self
        if size not in self.by_size:
            choice = choose.choose(self.model, size=size)
            same = not choice.contenders and (choice.build, choice.backend) == (self.job.build, self.job.backend.name)
            self.by_size[size] = self if same else self.reopen(size=size, params=self.request.params,
                                                                inputs=self.request.inputs)
        return self.by_size[size]


def as_rgb(image):
    """RGB uint8 HxWx3 from a numpy array, a path or a PIL image."""
    if isinstance(image, (str, Path)):
        return imaging.read_rgb(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ZooError(f"image: expected an RGB uint8 HxWx3 array, got {image.dtype} with shape {image.shape}")
        return imaging.to_rgb_array(image)
    if isinstance(image, Image.Image):
        return imaging.to_rgb(image)
    raise ZooError(f"image: expected a numpy array, a path or a PIL image, got {type(image).__name__}")


def open_enhancer(model, build=None, backend=None, variant=None, weights=None, device=None, workspace=None,
                  native=False, threads=0, options=None, shape=None, params=None, tile=0, registry=None, inputs=None):
    """Prepare MODEL's build, compile it unless cached, open a session: the one way sessions are made."""
    job = prepare(model, build, backend, variant, weights, device, workspace, native, options, shape, registry)
    return Enhancer(model, job, compiler.load(job, threads=threads), params, native, tile, inputs)


def prepare(model, build=None, backend=None, variant=None, weights=None, device=None, workspace=None,
            native=False, options=None, shape=None, registry=None):
    """The compile Job open_enhancer opens; `shape` (N,C,H,W) replaces the build's static input shape."""
    options = {**(options or {}), **({"device": device} if device else {})}
    job = compiler.prepare(model, build, backend, variant, weights, native=native, workspace=workspace,
                           registry=registry, options=options)
    if shape:
        job.spec["frontend"]["shape"] = {"input": list(shape)}
    return job


def load(name, build=None, backend=None, variant=None, weights=None, device=None, resize=False, size=None,
         **settings):
    """An Enhancer for model NAME, compiled for `build` on `backend`; it enhances each image at its own size
    (tiled above 1024 px, like `modelzoo run`), or at the card's fixed input size with resize=True.

    With neither build nor backend, the fastest accurate build for this machine is chosen (see
    modelzoo.choose; the choice is logged), for images of `size` (height, width; default the card's input
    size; a video picks again for its frame size). build: a build of the card (fp32, fp16, int8, ...). backend: torch,
    onnxruntime, openvino, ... (default: the build yaml's). variant: a weights variant of the card. weights: a
    file or folder (default: $MODELZOO_WEIGHTS, the user cache, then the card's url). device: for the torch
    backend, cpu, cuda or cuda:N. Other keywords are the card's post-processing parameters and runtime inputs,
    checked against the card, the same as `modelzoo run --set KEY=VALUE` (e.g. gamma=0.14, ratio=3); one
    compiled build serves every runtime input value.

        import modelzoo
        enhance = modelzoo.load(name)  # a name from modelzoo.list_models()
        bright = enhance("dark.png")  # RGB uint8 HxWx3
    """
    model = registry().model(name)
    params, inputs = model.settings(settings, "load():")
    return open_any(model, build, backend, variant, weights, device, native=not resize, params=params,
                    tile=0 if resize else DEFAULT_TILE, inputs=inputs, size=size)


def chooses(model, build=None, backend=None, variant=None):
    """True when the build is left to the automatic choice: neither build nor backend given, the default
    weights, and not MODELZOO_BUILD=first (which keeps the card's first build)."""
    return not (build or backend or (variant and variant != model.default_variant) or
                os.environ.get("MODELZOO_BUILD", "auto") == "first")


def open_any(model, build=None, backend=None, variant=None, weights=None, device=None, workspace=None,
             native=False, threads=0, params=None, tile=0, inputs=None, announce=logger.info, size=None):
    """open_enhancer for the build asked for, or for the automatic choice for images of `size` (height, width;
    default the card's input size), announced in one line."""
    if not chooses(model, build, backend, variant):
        return open_enhancer(model, build, backend, variant, weights, device, workspace, native, threads,
                             params=params, tile=tile, inputs=inputs)
    def ready(build, backend):  # compiled here, or compiles in seconds (see modelzoo.choose)
        return compiler.ready(prepare(model, build, backend, variant, weights, device, workspace, native))

    choice = choose.choose(model, size=size, ready=ready)
    announce(f"{model.name}: {choice.reason}")
    asked_tile = tile
    tile = min(tile, choice.tile) if tile and choice.tile else tile  # the tile its 12 MP peak fits the limit at
    opened = [open_enhancer(model, b, k, variant, weights, device, workspace, native, threads, params=params,
                            tile=tile, inputs=inputs) for b, k in choice.contenders or [(choice.build, choice.backend)]]
    if len(opened) == 1:
        enhancer = opened[0]
    else:
        def settled(timings, images):
            announce(f"{model.name}: {choose.settle(model, choice, timings, images).reason}")

        contest = Contest([(e.job, e.session) for e in opened], settled)
        enhancer = Enhancer(model, contest.job, contest, params, native, tile, inputs)
    enhancer.reopen = functools.partial(open_any, model, variant=variant, weights=weights, device=device,
                                        workspace=workspace, native=native, threads=threads, tile=asked_tile,
                                        announce=announce)
    return enhancer


class Contest:
    """A session that runs the first calls on each contender in turn, timing them per megapixel, then only on
    the fastest: the images that decide are enhanced all the same, so choosing costs no extra work. Every
    contender is an accurate build, so the outputs differ by no more than the tolerance either way.
    `settled(seconds per megapixel by (build, backend), images)` is told the result once."""

    def __init__(self, contenders, settled, rounds=ROUNDS):
        self.contenders, self.settled, self.rounds = list(contenders), settled, rounds
        self.times = {self.key(job): [] for job, _ in self.contenders}
        self.calls, self.lock = 0, threading.Lock()
        self.job, self.session = self.contenders[0]

    @staticmethod
    def key(job):
        return job.build, job.backend.name

    def run(self, x, inputs=None):
        with self.lock:
            if len(self.contenders) == 1:
                return feed(self.session, x, inputs)
            job, session = self.contenders[self.calls % len(self.contenders)]
            self.calls += 1
            tick = time.perf_counter()
            outputs = feed(session, x, inputs)
            megapixels = x.shape[0] * x.shape[2] * x.shape[3] / 1e6
            self.times[self.key(job)].append((time.perf_counter() - tick) / megapixels)
            if all(len(t) >= self.rounds for t in self.times.values()):
                self.decide()
            return outputs

    def decide(self):
        # the best of each: the first call of a session also pays its one-time set-up
        best = {key: min(times) for key, times in self.times.items()}
        self.job, self.session = min(self.contenders, key=lambda c: best[self.key(c[0])])
        self.contenders = [(self.job, self.session)]
        self.settled(best, self.calls)


def registry():
    """The process-wide plugin registry (modelzoo.plugins.registry)."""
    return plugin_registry()


def list_models():
    """The names of the registered models, sorted."""
    return sorted(registry().models)


def card(name):
    """The validated card of model NAME (a dict, as in its card.yaml)."""
    return registry().model(name).card
