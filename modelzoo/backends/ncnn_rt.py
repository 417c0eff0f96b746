"""ncnn on the CPU (Tencent's inference framework): Winograd 3x3 convolutions, the fastest CPU path here.

The plugin's deploy module is traced to TorchScript at the build's shape and converted by pnnx into ncnn's
model.param / model.bin; no ONNX export is involved. ncnn graphs carry no fixed input size, so the same
artifact runs any H x W: `--native` needs no second export. The cache key includes the shape mode, so a
--native job gets its own cache folder, filled with a copy of the static build's files (built first if absent).

dtypes:
  fp32   fp32 weights, fp32 storage and arithmetic
  fp16   fp16 weights in model.bin (pnnx fp16=1) and fp16 storage where the CPU supports it; fp32 arithmetic

Build options (a build yaml's backend.compile, or `options=` to modelzoo.compile.prepare), all read at load:
  threads   worker threads (0: ncnn's default, the physical big cores)
  winograd  Winograd 3x3 convolutions (default true; false: im2col sgemm)
  packing   packed SIMD layout (default true)

Parity gate: Winograd changes rounding, so the bound (PARITY_LIMIT) is looser than the ONNX export's; the
measured figure is kept in the artifact manifest's report as `parity`.
Blob names follow pnnx: the image is `in0`, the card's runtime inputs `in1`, `in2`, ... (each a 1-D blob of one
value), the outputs `out0`, `out1`, ... in the deploy module's order.
"""
import dataclasses
import importlib.util
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from modelzoo import compile as compiler
from modelzoo.backends import Backend
from modelzoo.errors import ZooError
from modelzoo.export import example_inputs, torch_outputs
from modelzoo.machine import versions
from modelzoo.padding import padded

PARITY_LIMIT = 2e-3
FILES = ("model.param", "model.bin")


def _flag(value, default):
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


class Ncnn(Backend):
    name = "ncnn"
    description = "ncnn (CPU, Winograd convolutions; converted from TorchScript by pnnx)"
    dtypes = ("fp32", "fp16")
    package = "ncnn"
    install = "pip install ncnn pnnx"
    needs_onnx = False
    quick = False  # pnnx traces and converts the TorchScript module: 36 s for PairLIE on 2 cores

    def missing(self, build=None):
        absent = [name for name in ("ncnn", "pnnx") if importlib.util.find_spec(name) is None]
        if absent:
            names = " and ".join(f"'{name}'" for name in absent)
            return (f"backend {self.name} needs the {names} package{'s' if len(absent) > 1 else ''}: "
                    f"{self.install} (or pip install 'modelzoo[ncnn]')")
        return None

    # -- compile -----------------------------------------------------------------------------------------------
    def compile(self, job):
        import torch

        if job.dtype not in self.dtypes:
            raise ZooError(f"{job.label}: ncnn builds fp32 or fp16, not {job.dtype}")
        if job.native:
            return self.reuse_static(job)
        module = job.torch_module()
        shape = [1, *job.shape[1:]]  # ncnn has no batch axis: sessions loop over N
        image, inputs = example_inputs(job, shape)
        args = (torch.from_numpy(image), *(torch.from_numpy(v) for v in inputs.values()))
        with tempfile.TemporaryDirectory(prefix="modelzoo-pnnx-") as scratch:
            scratch = Path(scratch)
            traced_path = scratch / "traced.pt"
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                # Frozen: parameters become constants and shared sub-modules (SCI's blocks) are inlined, which
                # pnnx turns into plain ncnn layers (unfrozen, it leaves a shared nn.Conv2d unconverted).
                traced = torch.jit.freeze(torch.jit.trace(module, args, check_trace=False).eval())
            traced.save(str(traced_path))
            # compile.second_shape: a second input size tells pnnx which dimensions vary, so reshapes that
            # depend on H and W (IAT's token count) stay symbolic; the parity check below tries a third size.
            # Off by default: it changes how pnnx writes other size-dependent ops (Zero-DCE++'s upsampling).
            other = [1, shape[1], *(padded(side // 2 + 1, job.model.multiple_of) for side in shape[2:])] \
                if job.options.get("second_shape") else None
            convert(traced_path, shape, job.workdir / FILES[0], job.workdir / FILES[1], fp16=job.dtype == "fp16",
                    label=job.label, other_shape=other, extra_inputs=len(inputs))
        unknown = unconverted(job.workdir / FILES[0])
        if unknown:
            raise ZooError(f"{job.label}: pnnx left layers ncnn cannot run: {', '.join(unknown[:5])}")
        job.report["parity"] = self.parity(job, module, image)
        job.report["versions"] = versions("ncnn", "pnnx")
        return list(FILES)

    def reuse_static(self, job):
        """--native: ncnn artifacts are shape-free, so copy the static build's files (building it if needed)."""
        static = dataclasses.replace(job, native=False, workdir=None, onnx=None, report={})
        compiler.ensure(static, log=lambda message: None)
        for name in FILES:
            shutil.copyfile(static.workdir / name, job.workdir / name)
        job.report.update(static.report)
        job.report["copied_from"] = static.workdir.name
        return list(FILES)

    def parity(self, job, module, example):
        """Max abs difference between torch and ncnn on the seeded input at the build's shape, and at an odd
        smaller size (the artifact serves any size); ZooError above PARITY_LIMIT."""
        session = self.load(job)
        diff = self.compare(job, module, session, example)
        height, width = example.shape[2:]
        minimum = max(int(job.model.card["input"].get("min_size") or 1), 8)
        odd = (max(minimum, height // 3) | 1, max(minimum, width // 5) | 1)
        odd = tuple(padded(side, job.model.multiple_of) for side in odd)  # sessions see padded sizes only
        small = np.random.default_rng(0).random((1, example.shape[1], *odd), dtype=np.float32)
        any_size = self.compare(job, module, session, small)
        worst = max(diff, any_size)
        if not worst <= PARITY_LIMIT:
            raise ZooError(f"{job.label}: ncnn differs from torch by {worst:.2e} (limit {PARITY_LIMIT:.0e})")
        return {"max_abs_diff": diff, "limit": PARITY_LIMIT, "shape": list(example.shape), "against": "torch",
                "any_size": {"shape": list(small.shape), "max_abs_diff": any_size},
                "options": {k: job.options.get(k) for k in ("winograd", "packing") if k in job.options}}

    def compare(self, job, module, session, example):
        """Max abs difference between torch and an ncnn session on one input (runtime inputs at their defaults);
        ZooError on a shape mismatch."""
        inputs = job.model.runtime_arrays()
        expected = torch_outputs(module, example, inputs)
        actual = session.run(example, inputs)
        if len(actual) != len(expected):
            raise ZooError(f"{job.label}: ncnn returned {len(actual)} outputs, torch {len(expected)}")
        for a, e in zip(actual, expected):
            if a.shape != e.shape:
                raise ZooError(f"{job.label}: at input {list(example.shape)} ncnn's output is {list(a.shape)}, "
                               f"torch's {list(e.shape)}")
        return max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected))

    # -- load ----------------------------------------------------------------------------------------------------
    def load(self, job, threads=0):
        import ncnn

        net = ncnn.Net()
        opt = net.opt  # options take effect only when set before load_param / load_model
        threads = threads or int(job.options.get("threads") or 0)
        if threads:
            opt.num_threads = threads
        opt.use_vulkan_compute = False
        opt.use_winograd_convolution = _flag(job.options.get("winograd"), True)
        opt.use_packing_layout = _flag(job.options.get("packing"), True)
        half = job.dtype == "fp16"
        opt.use_fp16_storage = half
        opt.use_fp16_packed = half
        opt.use_fp16_arithmetic = False  # fp32 arithmetic for both dtypes
        opt.use_bf16_storage = False
        for name in FILES:
            path = job.workdir / name
            status = net.load_param(str(path)) if name.endswith(".param") else net.load_model(str(path))
            if status != 0:
                raise ZooError(f"{path}: ncnn could not load it (status {status}); rebuild with compile --force")
        return NcnnSession(net, len(job.model.card["outputs"]))


def convert(traced, shape, param, binary, fp16, label="", other_shape=None, extra_inputs=0):
    """Run the pnnx converter on a saved TorchScript trace; side files stay in the trace's folder."""
    from pnnx import EXEC_PATH

    folder = Path(traced).parent
    extra = ",[1]f32" * extra_inputs  # runtime inputs: one float each
    shapes = [f"inputshape=[{','.join(map(str, shape))}]f32{extra}"]
    if other_shape:
        shapes.append(f"inputshape2=[{','.join(map(str, other_shape))}]f32{extra}")
    command = [EXEC_PATH, str(traced), *shapes, "device=cpu",
               f"fp16={1 if fp16 else 0}", f"ncnnparam={param}", f"ncnnbin={binary}",
               f"ncnnpy={folder / 'model_ncnn.py'}", f"pnnxparam={folder / 'model.pnnx.param'}",
               f"pnnxbin={folder / 'model.pnnx.bin'}", f"pnnxpy={folder / 'model_pnnx.py'}",
               f"pnnxonnx={folder / 'model.pnnx.onnx'}"]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, errors="replace")
    except OSError as exc:
        raise ZooError(f"{label}: could not run pnnx ({EXEC_PATH}): {exc}") from None
    if done.returncode != 0 or not Path(param).is_file() or not Path(binary).is_file():
        tail = " | ".join((done.stderr or done.stdout or "").strip().splitlines()[-3:])[:400]
        raise ZooError(f"{label}: pnnx failed to convert the TorchScript trace (exit {done.returncode}): {tail}")


def unconverted(param):
    """Layer types in an ncnn param file that pnnx left as torch operators (nn.*, F.*, torch.*, Tensor.*)."""
    found = []
    for line in Path(param).read_text().splitlines()[2:]:
        kind = line.split(maxsplit=1)[0] if line.strip() else ""
        if "." in kind and kind not in found:
            found.append(kind)
    return found


class NcnnSession:
    """run(float32 NCHW numpy, any H x W) -> float32 NCHW numpy outputs; a batch runs image by image."""

    def __init__(self, net, outputs):
        self.net, self.outputs = net, outputs

    def run(self, x, inputs=None):
        import ncnn

        x = np.asarray(x, dtype=np.float32)
        extras = [np.ascontiguousarray(v, dtype=np.float32).reshape(1) for v in (inputs or {}).values()]
        if x.ndim != 4:
            raise ZooError(f"ncnn: expected an NCHW input, got shape {list(x.shape)}")
        per_image = []
        for image in x:
            image = np.ascontiguousarray(image)
            extractor = self.net.create_extractor()
            # clone: a Mat wrapping numpy memory has no reference count, and an in-place first layer (UnaryOp
            # square, ReLU) reading the input blob crashes extract() with a segfault
            extractor.input("in0", ncnn.Mat(image).clone())
            for index, value in enumerate(extras, start=1):
                extractor.input(f"in{index}", ncnn.Mat(value).clone())
            outputs = []
            for index in range(self.outputs):
                status, mat = extractor.extract(f"out{index}")
                if status != 0:
                    raise ZooError(f"ncnn: extracting out{index} failed (status {status})")
                result = np.array(mat, dtype=np.float32)
                outputs.append(result if result.ndim == 3 else result.reshape(-1, *result.shape[-2:]))
            per_image.append(outputs)
        return [np.stack([outputs[i] for outputs in per_image]) for i in range(self.outputs)]
