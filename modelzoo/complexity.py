"""Parameters and multiply-accumulates counted from a model's layers, never written by hand.

`count(module, shape)` runs one forward pass on zeros with forward hooks on the layers that do the
arithmetic (Conv*d, ConvTranspose*d, Linear) and adds up, per call:

    Conv:   output elements x (in_channels / groups) x kernel elements
    Linear: output elements x in_features

Bias additions, activations, padding and pooling are not counted (the usual convention of thop, fvcore and
the papers' tables). FLOPs are reported as 2 x MACs. Parameters are every parameter of the module.

PairLIE at 1x3x400x600: 341,767 parameters, 81,838,080,000 MACs (163.7 GFLOPs). The reference zoo's table
says 182.276 GFLOPs because its export script divides thop's MAC count by 9e8 before doubling.
"""
import math

from modelzoo.errors import ZooError

MEASURED = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Linear")


def _macs(layer, inputs, output):
    name = type(layer).__name__
    if name.startswith("ConvTranspose"):
        # each input element is multiplied by out_channels/groups x kernel weights
        source = inputs[0]
        return source.numel() * (layer.out_channels // layer.groups) * math.prod(layer.kernel_size)
    if name.startswith("Conv"):
        return output.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    if name == "Linear":
        return output.numel() * layer.in_features
    return 0


def count(module, shape):
    """{'params', 'macs', 'flops', 'shape', 'layers'} for `module` on an input of `shape` (N, C, H, W)."""
    import torch

    totals = {"macs": 0, "layers": 0}

    def hook(layer, inputs, output):
        totals["macs"] += int(_macs(layer, inputs, output))
        totals["layers"] += 1

    handles = [m.register_forward_hook(hook) for m in module.modules() if type(m).__name__ in MEASURED]
    if not handles:
        raise ZooError(f"{type(module).__name__}: no Conv or Linear layers to count")
    try:
        with torch.inference_mode():
            # `meta` tensors would avoid the compute, but not every op has a meta kernel; zeros are exact.
            module.eval()(torch.zeros(*shape))
    finally:
        for handle in handles:
            handle.remove()
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
    return count(network, [batch, channels, padded(height, model.multiple_of), padded(width, model.multiple_of)])


def summary(counted):
    """A one-line human form: `341,767 params, 81.84 G MACs (163.7 GFLOPs) at 1x3x400x600`."""
    return (f"{counted['params']:,} params, {counted['macs'] / 1e9:.2f} G MACs ({counted['flops'] / 1e9:.1f} GFLOPs)"
            f" at {'x'.join(map(str, counted['shape']))}")
