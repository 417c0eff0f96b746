"""Export the plugin's deploy module to TorchScript and ONNX, with a parity gate against ONNX Runtime."""
import warnings

import numpy as np

from modelzoo.errors import ZooError

OPSET = 17
PARITY_LIMIT = 1e-4


def output_names(model):
    return [output["name"] for output in model.card["outputs"]]


def export_onnx(job, path, dynamic=None, module=None):
    """Write an ONNX model (input `input`, outputs named by the card); return the parity report."""
    import torch

    dynamic = job.native if dynamic is None else dynamic
    module = module or job.torch_module()
    example = torch.rand(*job.shape, generator=torch.Generator().manual_seed(0))
    names = output_names(job.model)
    axes = None
    if dynamic:
        axes = {"input": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch", 2: "height", 3: "width"} for name in names})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=names,
                          opset_version=OPSET, dynamic_axes=axes, dynamo=False)
    return parity(module, path, example.numpy(), names)


def parity(module, path, example, names):
    """Max abs difference between torch and ONNX Runtime on one input; ZooError above PARITY_LIMIT."""
    import onnxruntime as ort
    import torch

    with torch.inference_mode():
        expected = [o.numpy() for o in module(torch.from_numpy(example))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(names, {"input": example})
    diff = max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected))
    if not diff <= PARITY_LIMIT:
        raise ZooError(f"{path}: ONNX Runtime differs from torch by {diff:.2e} (limit {PARITY_LIMIT:.0e})")
    return {"max_abs_diff": diff, "limit": PARITY_LIMIT, "shape": list(example.shape), "against": "onnxruntime"}


def export_all(job, folder):
    """`modelzoo export`: TorchScript (traced), ONNX at the build's shape and ONNX with dynamic H and W."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    module = job.torch_module()
    example = torch.rand(*job.shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
    torchscript = folder / f"{job.model.name}-{'_'.join(map(str, job.shape[1:]))}.torchscript.pt"
    traced.save(str(torchscript))
    report = {"torchscript": str(torchscript)}
    for dynamic in (False, True):
        suffix = "dynamic" if dynamic else "_".join(map(str, job.shape[1:]))
        target = folder / f"{job.model.name}-{suffix}.onnx"
        report[target.name] = export_onnx(job, target, dynamic=dynamic, module=module)
    return report
