"""fp16 conversion and int8 calibration + quantization of an fp32 ONNX export (used by the ONNX backends)."""
import time

import numpy as np

from modelzoo.errors import ZooError

# The reference zoo's calibrate_mode names -> ONNX Runtime calibration methods.
CALIBRATE_MODES = {"kl_divergence": "Entropy", "max": "MinMax", "percentile": "Percentile"}


def to_fp16(source, target):
    """fp16 weights and activations inside; fp32 inputs and outputs kept so callers do not change."""
    import warnings

    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(source))
    separate_outputs(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns for every weight below fp16's smallest normal number
        model = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(model, str(target))


def separate_outputs(model):
    """Give each graph output that other nodes also read its own Identity node.

    keep_io_types casts outputs back to fp32; without this the fp32 copy would also feed the fp16 nodes
    inside and ONNX Runtime refuses the mixed types.
    """
    import onnx

    read = {name for node in model.graph.node for name in node.input}
    for output in model.graph.output:
        if output.name not in read:
            continue
        inner = f"{output.name}__inner"
        for node in model.graph.node:
            node.output[:] = [inner if n == output.name else n for n in node.output]
            node.input[:] = [inner if n == output.name else n for n in node.input]
        model.graph.node.append(onnx.helper.make_node("Identity", [inner], [output.name]))


def calibration_inputs(job):
    """The build yaml's calibration images, preprocessed by its process_ops, as float32 NCHW arrays."""
    from modelzoo.datasets import Item
    from modelzoo.imaging import list_images, read_rgb, resize
    from modelzoo.padding import pad_to_multiple
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
            if op["type"] == "Resize":  # without a size: the card's input shape
                height, width = op.get("size") or job.model.input_shape()[2:]
                x = resize(image, width, height).astype(np.float32) / 255.0
            elif op["type"] == "Normalize" and op.get("mean") is not None:
                x = (x * 255.0 - np.float32(op["mean"])) / np.float32(op.get("std") or [1, 1, 1])
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        arrays.append(pad_to_multiple(x, job.model.multiple_of))  # as the session will pad it
    return arrays


BINS = 2048
STRIDE = 4  # histogram every 4th activation value: ranges barely move, calibration gets much faster


def calibration_plan(model):
    """Activation tensors whose ranges quantization needs -> the tensor whose histogram gives that range.

    Reflect/constant Pad adds no new values, so its output shares its input's range; a Conv whose only
    consumer is a Relu takes the Relu's range, because QDQ fuses the pair.
    """
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {i.name for i in model.graph.initializer} | {
        n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    alias, tensors = {}, []
    for node in model.graph.node:
        if node.op_type in ("Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Slice",
                            "ConstantOfShape", "Cast"):
            continue
        for name in list(node.input[:1]) + list(node.output):
            if name and name not in constants and name not in tensors:
                tensors.append(name)
        if node.op_type == "Pad":
            alias[node.output[0]] = node.input[0]
        if node.op_type == "Conv":
            after = consumers.get(node.output[0], [])
            if len(after) == 1 and after[0].op_type == "Relu":
                alias[node.output[0]] = after[0].output[0]

    def root(name):
        while name in alias:
            name = alias[name]
        return name

    return {name: root(name) for name in tensors}


class Histogram:
    """A fixed number of bins over [0, T] (or [-T, T] once negatives appear); T doubles as values grow."""

    def __init__(self):
        self.counts = np.zeros(BINS)
        self.low, self.high, self.limit, self.signed = np.inf, -np.inf, 0.0, False

    def add(self, values):
        import torch

        values = torch.from_numpy(np.ascontiguousarray(values).reshape(-1))
        low, high = (float(v) for v in torch.aminmax(values))  # extremes from every value, counts from a sample
        values = values[::STRIDE]
        self.low, self.high = min(self.low, low), max(self.high, high)
        if self.low < 0 and not self.signed:
            self._regrid(signed=True)
        while max(abs(low), abs(high)) > self.limit:
            self._regrid(grow=True)
        self.counts += torch.histc(values, BINS, -self.limit if self.signed else 0.0, self.limit).double().numpy()

    def _regrid(self, signed=None, grow=False):
        """Double the range (merging bin pairs) or switch to a signed grid, keeping the counts."""
        if self.limit == 0.0:
            self.limit = max(abs(self.low), abs(self.high), 1e-8)
            self.signed = signed if signed is not None else self.signed
            return
        merged = self.counts.reshape(-1, 2).sum(1) if grow or signed else self.counts
        counts = np.zeros(BINS)
        if signed:  # [0, T] becomes the upper half of [-T, T], at half the resolution
            counts[BINS // 2:] = merged
            self.signed = True
        elif self.signed:
            counts[BINS // 4: BINS // 4 + BINS // 2] = merged
            self.limit *= 2
        else:
            counts[: BINS // 2] = merged
            self.limit *= 2
        self.counts = counts

    def edges(self):
        return np.linspace(-self.limit if self.signed else 0.0, self.limit, BINS + 1)

    def minmax(self):
        return self.low, self.high

    def percentile(self, percent):
        cumulative = np.cumsum(self.counts) / max(self.counts.sum(), 1)
        edges = self.edges()
        high = edges[min(np.searchsorted(cumulative, percent / 100.0) + 1, BINS)]
        low = edges[np.searchsorted(cumulative, 1 - percent / 100.0)] if self.signed else 0.0
        return max(low, self.low), min(high, self.high)

    def kl_divergence(self, levels=256):
        """TensorRT-style entropy calibration: the clipping threshold whose quantized histogram loses the
        least information (KL divergence); signed tensors fall back to min/max."""
        if self.signed:
            return self.minmax()
        counts = self.counts
        last = int(np.nonzero(counts)[0][-1]) + 1 if counts.any() else 0
        if last <= levels:
            return 0.0, self.high
        best, threshold = np.inf, last
        for i in range(levels, last + 1):
            reference = counts[:i].copy()
            reference[i - 1] += counts[i:].sum()
            nonzero = counts[:i] > 0
            index = (np.arange(i) * levels) // i
            sums = np.bincount(index, weights=counts[:i], minlength=levels)
            sizes = np.bincount(index, weights=nonzero, minlength=levels)
            candidate = np.where(nonzero, sums[index] / np.maximum(sizes[index], 1), 0.0)
            p, q = reference / reference.sum(), candidate / max(candidate.sum(), 1e-12)
            mask = p > 0
            divergence = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))
            if divergence < best:
                best, threshold = divergence, i
        return 0.0, min(self.edges()[threshold], self.high)


def collect_histograms(onnx_path, arrays, plan, threads=0, runtime=None):
    """One pass over the calibration inputs (with the `runtime` inputs, {name: float32 [1]}) with every needed
    activation as an extra output."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    sources = sorted(set(plan.values()))
    known = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    inputs = {i.name for i in model.graph.input}
    outputs = {o.name for o in model.graph.output}
    for name in sources:
        if name not in outputs and name not in inputs:
            model.graph.output.append(known.get(name) or onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # 2x faster than BASIC here
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    input_name = session.get_inputs()[0].name
    histograms = {name: Histogram() for name in sources}
    runtime = runtime or {}
    for x in arrays:
        values = dict(zip(names, session.run(None, {input_name: x, **runtime})))
        values.update({input_name: x, **runtime})
        for name in sources:
            histograms[name].add(values[name])
    return histograms


def to_int8(job, target):
    """ONNX Runtime static QDQ quantization: per-channel int8 weights, uint8 activations whose ranges come
    from one pass of histogram calibration over the build yaml's calibration set (bounded memory)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    settings = job.spec["backend"].get("quantize") or {}
    if settings.get("engine") == "nncf":
        raise ZooError(f"{job.spec_path}: backend.quantize.engine: nncf quantizes for openvino only, not "
                       f"{job.backend.name} (compile this build with --backend openvino)")
    mode = settings.get("calibrate_mode", "kl_divergence")
    started = time.perf_counter()
    prepared = target.with_name("prepared.onnx")
    # folds the Pad shape subgraphs into constants. Symbolic shape inference only for static exports: on some
    # dynamic graphs (Zero-DCE++) it gives up, and then dumps its model into the working directory.
    quant_pre_process(str(job.onnx), str(prepared), skip_symbolic_shape=job.native)
    plan = calibration_plan(onnx.load(str(prepared)))
    arrays = calibration_inputs(job)
    images = len(arrays)
    runtime = job.model.runtime_arrays()  # calibrated at the defaults; their ranges come from the card
    histograms = collect_histograms(prepared, arrays, plan, int(job.options.get("threads") or 0), runtime)
    del arrays[:]
    low, high = job.model.card["input"]["range"]
    inputs = {i.name for i in onnx.load(str(prepared)).graph.input}
    ranges = {}
    for name, histogram in histograms.items():
        if name in job.model.runtime_inputs:
            spec = job.model.runtime_inputs[name]
            ranges[name] = (min(spec.get("minimum", spec["default"]), 0.0), spec.get("maximum", spec["default"]))
        elif name in inputs:
            ranges[name] = (low, high)  # the card states the input's range exactly
        elif mode == "percentile":
            ranges[name] = histogram.percentile(settings.get("percentile", 99.99))
        elif mode == "max":
            ranges[name] = histogram.minmax()
        else:
            ranges[name] = histogram.kl_divergence()
    cache = target.with_name("calibration.json")
    save_tensors_data(TensorsData(getattr(CalibrationMethod, CALIBRATE_MODES[mode]), {
        tensor: TensorData(lowest=np.float32(ranges[source][0]), highest=np.float32(ranges[source][1]))
        for tensor, source in plan.items()}), str(cache))
    skipped = skipped_nodes(onnx.load(str(prepared)), settings, job.spec_path)
    quantize_static(
        str(prepared), str(target), None,
        quant_format=QuantFormat.QDQ,
        per_channel=settings.get("quantize_per_channel", True),
        activation_type=QuantType.QUInt8 if settings.get("activation_type", "uint8") == "uint8" else QuantType.QInt8,
        weight_type=QuantType.QInt8 if settings.get("weight_type", "int8") == "int8" else QuantType.QUInt8,
        calibrate_method=getattr(CalibrationMethod, CALIBRATE_MODES[mode]),
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=skipped,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        calibration_cache_path=str(cache),
    )
    prepared.unlink()
    cache.unlink()
    return {"calibration": {"mode": mode, "method": CALIBRATE_MODES[mode], "images": images,
                            "float_nodes": skipped, "seconds": round(time.perf_counter() - started, 1)}}


def skipped_nodes(model, settings, label):
    """Convolutions kept in float: by name (skip_nodes) and by position among the Convs (skip_conv_layers,
    negative counts from the end)."""
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    chosen = list(settings.get("skip_nodes") or [])
    unknown = [name for name in chosen if name not in convs]
    if unknown:  # a misspelt name would silently quantize the node it meant to keep in float
        raise ZooError(f"{label}: backend.quantize.skip_nodes: {', '.join(unknown)} is not a Conv of the export "
                       f"(its Convs: {', '.join(convs[:4])}{', ...' if len(convs) > 4 else ''})")
    for index in settings.get("skip_conv_layers") or []:
        if -len(convs) <= index < len(convs):
            chosen.append(convs[index])
    return sorted(set(chosen))


def nncf_int8(job):
    """OpenVINO int8 through NNCF's post-training quantization (`backend.quantize.engine: nncf`): the fp32 IR
    quantized on the build yaml's calibration set; skip_nodes / skip_conv_layers stay in float. Returns
    (the quantized openvino.Model, report)."""
    import logging

    import nncf
    import onnx
    import openvino as ov

    settings = job.spec["backend"].get("quantize") or {}
    started = time.perf_counter()
    model = ov.convert_model(str(job.onnx))
    arrays = calibration_inputs(job)
    runtime = job.model.runtime_arrays()
    if runtime:  # every calibration item feeds the image and the runtime inputs (at their defaults) by name
        arrays = [{"input": x, **runtime} for x in arrays]
    skipped = skipped_nodes(onnx.load(str(job.onnx)), settings, job.spec_path)
    # the ONNX node names survive conversion as the Convolution ops' friendly names (biases are split off)
    names = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "Convolution"
             and any(op.get_friendly_name().startswith(name) for name in skipped)]
    logging.getLogger("nncf").setLevel(logging.WARNING)
    quantized = nncf.quantize(
        model, nncf.Dataset(arrays), subset_size=len(arrays),
        preset=nncf.QuantizationPreset.MIXED if settings.get("preset", "mixed") == "mixed"
        else nncf.QuantizationPreset.PERFORMANCE,
        fast_bias_correction=settings.get("fast_bias_correction", True),
        ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None)
    return quantized, {"calibration": {"engine": "nncf", "nncf": nncf.__version__, "images": len(arrays),
                                       "float_nodes": names, "seconds": round(time.perf_counter() - started, 1)}}
