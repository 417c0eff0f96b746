"""fp16 conversion and int8 calibration + quantization of an fp32 ONNX export (used by the ONNX backends)."""
import time
from pathlib import Path

import numpy as np

from modelzoo.errors import ZooError

# The reference zoo's calibrate_mode names -> ONNX Runtime calibration methods.
CALIBRATE_MODES = {"kl_divergence": "Entropy", "max": "MinMax", "percentile": "Percentile"}


def to_fp16(source, target):
    """fp16 weights and activations inside; fp32 inputs and outputs kept so callers do not change."""
    import warnings

    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns for every weight below fp16's smallest normal number
        model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


def calibration_inputs(job):
    """The build yaml's calibration images, preprocessed by its process_ops, as float32 NCHW arrays."""
    from modelzoo.datasets import Item
    from modelzoo.imaging import list_images, read_rgb, resize
    from modelzoo.plugins import registry

    dataset = job.spec.get("dataset")
    if not dataset:
        raise ZooError(f"{job.spec_path}: dataset: an int8 build needs calibration images (dataset.path or type)")
    if dataset.get("path"):
        items = [Item(p.stem, p) for p in list_images(dataset["path"])]
    else:
        items = registry().dataset(dataset["type"]).items(job.options.get("data_root"))
    sampler = dataset.get("sampler") or {}
    suffix = sampler.get("suffix")
    files = [i.input for i in items if not suffix or i.input.suffix.lower() == "." + suffix.lower()]
    files = files[: sampler.get("get_data_num") or len(files)]
    if not files:
        raise ZooError(f"{job.spec_path}: dataset: no calibration images found")
    arrays = []
    for path in files:
        image = read_rgb(path)
        x = image.astype(np.float32) / 255.0
        for op in dataset.get("process_ops") or []:
            if op["type"] == "Resize":
                height, width = op["size"]
                x = resize(image, width, height).astype(np.float32) / 255.0
            elif op["type"] == "Normalize" and op.get("mean") is not None:
                x = (x * 255.0 - np.float32(op["mean"])) / np.float32(op.get("std") or [1, 1, 1])
        arrays.append(np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32))
    return arrays


class _Reader:
    def __init__(self, arrays):
        self.arrays = iter(arrays)

    def get_next(self):
        x = next(self.arrays, None)
        return None if x is None else {"input": x}

    def rewind(self):
        pass


def to_int8(job, target):
    """ONNX Runtime static quantization (QDQ) with the build yaml's calibration settings."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    settings = job.spec["backend"].get("quantize") or {}
    mode = settings.get("calibrate_mode", "kl_divergence")
    started = time.perf_counter()
    arrays = calibration_inputs(job)
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if mode == "percentile":
        extra["CalibPercentile"] = settings.get("percentile", 99.999)
    quantize_static(
        str(job.onnx), str(target), _Reader(arrays),
        quant_format=QuantFormat.QDQ,
        per_channel=settings.get("quantize_per_channel", True),
        activation_type=QuantType.QUInt8 if settings.get("activation_type", "uint8") == "uint8" else QuantType.QInt8,
        weight_type=QuantType.QInt8 if settings.get("weight_type", "int8") == "int8" else QuantType.QUInt8,
        calibrate_method=getattr(CalibrationMethod, CALIBRATE_MODES[mode]),
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=settings.get("skip_nodes") or [],
        extra_options=extra,
    )
    return {"calibration": {"mode": mode, "method": CALIBRATE_MODES[mode], "images": len(arrays),
                            "seconds": round(time.perf_counter() - started, 1)}}
