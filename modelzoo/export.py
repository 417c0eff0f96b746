"""Export the plugin's deploy module to TorchScript and ONNX, with a parity gate against ONNX Runtime.

The graph's inputs are `input` (the image) and then the card's runtime inputs by name, each float32 [1], so
one export serves every runtime input value.
"""
import warnings

import cv2
import numpy as np
import skimage.data

from modelzoo import imaging, samples
from modelzoo.errors import ZooError

OPSET = 17
PARITY_LIMIT = 1e-4


def output_names(model):
    return [output["name"] for output in model.card["outputs"]]


def example_inputs(job, shape=None):
    """The example image at the job's shape (or `shape`) and the runtime inputs at their defaults, as numpy:
    (image, {name: float32 [1]}). The image is seeded uniform noise in [0, 1), or with the card's
    `parity_input: sample` the built-in coffee sample (darkened, resized): for a model whose output on noise is
    ill-conditioned (a frequency stage dividing the spectrum), where the gate would measure float32 itself."""
    import torch

    shape = list(shape or job.shape)
    if job.model.card.get("parity_input") == "sample":
        photo = cv2.resize(samples.darken(imaging.to_rgb_array(skimage.data.coffee())), (shape[3], shape[2]),
                           interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(np.broadcast_to(photo.transpose(2, 0, 1)[None] / np.float32(255), shape))
        return image.astype(np.float32), job.model.runtime_arrays()
    image = torch.rand(*shape, generator=torch.Generator().manual_seed(0)).numpy()
    return image, job.model.runtime_arrays()


def torch_outputs(module, image, inputs):
    """The deploy module's outputs (numpy) for a numpy image and runtime inputs."""
    import torch

    with torch.inference_mode():
        extras = [torch.from_numpy(v) for v in inputs.values()]
        return [o.numpy() for o in module(torch.from_numpy(image), *extras)]


def export_onnx(job, path, dynamic=None, module=None):
    """Write an ONNX model (input `input`, the runtime inputs, outputs named by the card); return the parity
    report."""
    import torch

    dynamic = job.native if dynamic is None else dynamic
    module = module or job.torch_module()
    image, inputs = example_inputs(job)
    names = output_names(job.model)
    axes = None
    if dynamic:
        axes = {"input": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch", 2: "height", 3: "width"} for name in names})
    args = (torch.from_numpy(image), *(torch.from_numpy(v) for v in inputs.values()))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=["input", *inputs], output_names=names,
                          opset_version=OPSET, dynamic_axes=axes, dynamo=False)
    return parity(module, path, image, names, inputs, limit=job.model.card.get("parity_limit", PARITY_LIMIT))


def parity(module, path, example, names, inputs=None, limit=PARITY_LIMIT):
    """Max abs difference between torch and ONNX Runtime on one input; ZooError above `limit` (the card's
    parity_limit, PARITY_LIMIT by default)."""
    import onnxruntime as ort

    inputs = inputs or {}
    expected = torch_outputs(module, example, inputs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph_inputs = [i.name for i in session.get_inputs()]
    missing = [name for name in inputs if name not in graph_inputs]
    if missing:  # the exporter drops inputs the graph never reads
        raise ZooError(f"{path}: the export has no graph input {', '.join(missing)}: the deploy module's forward "
                       f"must use every runtime input the card declares")
    actual = session.run(names, {"input": example, **inputs})
    diff = max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected))
    if not diff <= limit:
        raise ZooError(f"{path}: ONNX Runtime differs from torch by {diff:.2e} (limit {limit:.0e})")
    return {"max_abs_diff": diff, "limit": limit, "shape": list(example.shape), "against": "onnxruntime"}


def export_all(job, folder):
    """`modelzoo export`: TorchScript (traced), ONNX at the build's shape and ONNX with dynamic H and W."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    module = job.torch_module()
    image, inputs = example_inputs(job)
    args = (torch.from_numpy(image), *(torch.from_numpy(v) for v in inputs.values()))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, args)
    torchscript = folder / f"{job.model.name}-{'_'.join(map(str, job.shape[1:]))}.torchscript.pt"
    traced.save(str(torchscript))
    report = {"torchscript": str(torchscript)}
    for dynamic in (False, True):
        suffix = "dynamic" if dynamic else "_".join(map(str, job.shape[1:]))
        target = folder / f"{job.model.name}-{suffix}.onnx"
        report[target.name] = export_onnx(job, target, dynamic=dynamic, module=module)
    return report
