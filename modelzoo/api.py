"""The Python API: `modelzoo.load(name)` gives an enhancer, `list_models()` and `card(name)` describe the zoo.

`open_enhancer` is the one place a compiled session is assembled (prepare, compile if needed, load); the CLI,
publish, the Ray engine and bench all go through it, so a library user gets exactly what `modelzoo run` does.
"""
import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from modelzoo import compile as compiler
from modelzoo import imaging, runner, video
from modelzoo.errors import ZooError
from modelzoo.tiling import DEFAULT_TILE

logger = logging.getLogger(__name__)


class Enhancer:
    """A model compiled for one build and backend, ready to enhance images.

    `enhancer(image)` takes an RGB uint8 HxWx3 numpy array, a path or a PIL image (or a list of them) and
    returns RGB uint8 of the same size, run with the runtime inputs and post-processed with the parameters given
    to `load` (the card's defaults otherwise) and rounded as `modelzoo run` writes it. `enhancer.raw(image)` gives the deploy
    outputs (a list of numpy arrays, batch of 1); `enhancer.card` is the validated card.
    """

    def __init__(self, model, job, session, params=None, native=False, tile=0, inputs=None):
        self.model, self.job, self.session = model, job, session
        self.request = runner.Request(model, session, native=native, params=dict(params or {}), progress=False,
                                      tile=tile if native else 0, inputs=dict(inputs or {}))

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
        modelzoo.video); returns {"frames", "fps", "seconds", "flicker", "smoothing"}."""
        return video.enhance_video(source, target, self, codec=codec, crf=crf, smoothing=smoothing,
                                   progress=progress)


def as_rgb(image):
    """RGB uint8 HxWx3 from a numpy array, a path or a PIL image."""
    if isinstance(image, (str, Path)):
        return imaging.read_rgb(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ZooError(f"image: expected an RGB uint8 HxWx3 array, got {image.dtype} with shape {image.shape}")
        return imaging.to_rgb_array(image)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency of imaging
        Image = None
    if Image is not None and isinstance(image, Image.Image):
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


def load(name, build=None, backend=None, variant=None, weights=None, device=None, resize=False, **settings):
    """An Enhancer for model NAME, compiled for `build` on `backend`; it enhances each image at its own size
    (tiled above 1024 px, like `modelzoo run`), or at the card's fixed input size with resize=True.

    With neither build nor backend, the fastest accurate build for this machine is chosen (see
    modelzoo.choose; the choice is logged). build: a build of the card (fp32, fp16, int8, ...). backend: torch,
    onnxruntime, openvino, ... (default: the build yaml's). variant: a weights variant of the card. weights: a
    file or folder (default: $MODELZOO_WEIGHTS, the user cache, then the card's url). device: for the torch
    backend, cpu, cuda or cuda:N. Other keywords are the card's post-processing parameters and runtime inputs,
    checked against the card, the same as `modelzoo run --set KEY=VALUE` (e.g. gamma=0.14, ratio=3); one
    compiled build serves every runtime input value.

        import modelzoo
        enhance = modelzoo.load(name)  # a name from modelzoo.list_models()
        bright = enhance("dark.png")  # RGB uint8 HxWx3
    """
    model = _registry().model(name)
    params, inputs = model.settings(settings, "load():")
    build, backend = resolve_build(model, build, backend, variant)
    return open_enhancer(model, build, backend, variant, weights, device, native=not resize, params=params,
                         tile=0 if resize else DEFAULT_TILE, inputs=inputs)


def resolve_build(model, build=None, backend=None, variant=None, announce=logger.info):
    """(build, backend) to open: as given, or, with neither given and the default weights, the fastest
    accurate build for this machine (announced in one line). MODELZOO_BUILD=first keeps the card's first build."""
    if build or backend or (variant and variant != model.default_variant) or \
            os.environ.get("MODELZOO_BUILD", "auto") == "first":
        return build, backend
    from modelzoo.choose import choose

    choice = choose(model)
    announce(f"{model.name}: {choice.reason}")
    return choice.build, choice.backend


def list_models():
    """The names of the registered models, sorted."""
    return sorted(_registry().models)


def card(name):
    """The validated card of model NAME (a dict, as in its card.yaml)."""
    return _registry().model(name).card


def _registry():
    from modelzoo.plugins import registry

    return registry()
