"""OpenVINO sessions: a shape seen twice in a row runs on a static-shape copy (fused element-wise kernels),
with the same outputs as the dynamic model; shapes that keep changing compile nothing more."""
import numpy as np

from modelzoo.api import open_enhancer
from modelzoo.plugins import registry


def test_a_repeated_shape_runs_static_with_the_dynamic_models_outputs():
    enhancer = open_enhancer(registry().model("zero-dce-pp"), "fp32", "openvino", native=True)
    session = enhancer.session.session  # inside the padding wrapper (multiple_of 12)
    rng = np.random.default_rng(0)
    frame = rng.random((1, 3, 120, 144), dtype=np.float32) * 0.3
    first = session.run(frame)[0]
    assert not session.static
    second = session.run(frame)[0]
    assert list(session.static) == [(1, 3, 120, 144)]
    assert float(np.abs(second - first).max()) <= 1e-5
    for height in (48, 60, 72, 84):  # a new shape each call: the dynamic model, no compiling
        session.run(rng.random((1, 3, height, 96), dtype=np.float32))
    assert list(session.static) == [(1, 3, 120, 144)]
    for height in (48, 48, 60, 60, 72, 72):
        session.run(rng.random((1, 3, height, 96), dtype=np.float32))
    assert len(session.static) == session.STATIC_SHAPES and (1, 3, 72, 96) in session.static


def test_a_shape_that_cannot_be_fixed_is_tried_once(monkeypatch):
    enhancer = open_enhancer(registry().model("zero-dce-pp"), "fp32", "openvino", native=True)
    session = enhancer.session.session
    attempts = []

    def failing_compile(model, *args):
        attempts.append(model)
        raise RuntimeError("cannot reshape\ndetails")

    monkeypatch.setattr(session, "core", type("Core", (), {"compile_model": staticmethod(failing_compile)})())
    frame = np.full((1, 3, 48, 96), 0.2, dtype=np.float32)
    outputs = [session.run(frame)[0] for _ in range(4)]
    assert len(attempts) == 1 and not session.static  # the dynamic model ran every call, compiled once
    assert all(np.array_equal(outputs[0], out) for out in outputs)
