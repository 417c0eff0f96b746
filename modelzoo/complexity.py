"""Parameters and multiply-accumulates counted from a model's forward pass, never written by hand.

`count(module, shape)` runs one forward pass on zeros under a torch function mode that sees every call of
the functions that do the arithmetic, whether a layer (nn.Conv2d, nn.Linear) or the network's own code
(F.conv2d with computed weights, attention's matrix products) makes it, and adds up per call:

    conv (1d/2d/3d):      output elements x (in_channels / groups) x kernel elements
    conv_transpose:       input elements x (out_channels / groups) x kernel elements
    linear:               output elements x in_features
    matmul, mm, bmm:      output elements x the contracted dimension

Bias additions, activations, padding, pooling and elementwise products are not counted (the usual
convention of thop, fvcore and the papers' tables). FLOPs are reported as 2 x MACs. Parameters are every
parameter of the module.

PairLIE at 1x3x400x600: 341,767 parameters, 81,838,080,000 MACs (163.7 GFLOPs). The reference zoo's table
says 182.276 GFLOPs because its export script divides thop's MAC count by 9e8 before doubling.
"""
import math

from modelzoo.errors import ZooError


def _macs(name, args, kwargs, output):
    """Multiply-accumulates of one call of a counted function, or None for the others."""
    if name in ("conv1d", "conv2d", "conv3d"):
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return output.numel() * weight.shape[1] * math.prod(weight.shape[2:])
    if name.startswith("conv_transpose"):
        source, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
        return source.numel() * weight.shape[1] * math.prod(weight.shape[2:])
    if name == "linear":
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return output.numel() * weight.shape[-1]
    if name in ("matmul", "mm", "bmm"):
        return output.numel() * args[0].shape[-1]
    return None


def count(module, shape, inputs=None):
    """{'params', 'macs', 'flops', 'shape', 'layers'} for `module` on an input of `shape` (N, C, H, W) and the
    runtime `inputs` ({name: float32 [1]}); `layers` is the number of counted calls."""
    import torch
    from torch.overrides import TorchFunctionMode

    totals = {"macs": 0, "layers": 0}

    class Counting(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            output = func(*args, **kwargs)
            macs = _macs(getattr(func, "__name__", ""), args, kwargs, output)
            if macs is not None:
                totals["macs"] += int(macs)
                totals["layers"] += 1
            return output

    with torch.inference_mode(), Counting():
        # `meta` tensors would avoid the compute, but not every op has a meta kernel; zeros are exact.
        module.eval()(torch.zeros(*shape), *(torch.from_numpy(v) for v in (inputs or {}).values()))
    if not totals["layers"]:
        raise ZooError(f"{type(module).__name__}: no convolutions, linear layers or matrix products to count")
    params = sum(p.numel() for p in module.parameters())
    return {"params": int(params), "macs": totals["macs"], "flops": 2 * totals["macs"], "shape": list(shape),
            "layers": totals["layers"]}


def count_model(model, variant=None, shape=None):
    """Count a registered model's full network (all its outputs, as the official code runs it), random weights.

    Weights do not change the counts, so no weight file is needed. `shape` defaults to the card's
    complexity.shape.
    """
    from modelzoo.padding import padded

    network = model.network(variant or model.default_variant)
    batch, channels, height, width = shape or model.card["complexity"]["shape"]
    # the network runs at the padded size (input.multiple_of), so that is what it costs
    return count(network, [batch, channels, padded(height, model.multiple_of), padded(width, model.multiple_of)],
                 model.runtime_arrays())


def summary(counted):
    """A one-line human form: `341,767 params, 81.84 G MACs (163.7 GFLOPs) at 1x3x400x600`."""
    return (f"{counted['params']:,} params, {counted['macs'] / 1e9:.2f} G MACs ({counted['flops'] / 1e9:.1f} GFLOPs)"
            f" at {'x'.join(map(str, counted['shape']))}")
