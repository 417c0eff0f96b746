"""fp16 conversion and int8 calibration + quantization of an fp32 ONNX export (used by the ONNX backends)."""
import logging
import time

import numpy as np

from modelzoo.datasets import Item
from modelzoo.errors import ZooError
from modelzoo.imaging import list_images, read_rgb, resize
from modelzoo.metrics import agreement_db
from modelzoo.padding import pad_to_multiple
from modelzoo.plugins import registry

# The reference zoo's calibrate_mode names -> ONNX Runtime calibration methods.
CALIBRATE_MODES = {"kl_divergence": "Entropy", "max": "MinMax", "percentile": "Percentile"}


def to_fp16(source, target, settings=None, label="the build yaml"):
    """fp16 weights and activations inside, but for the nodes the build yaml keeps in float (`settings`, its
    backend.quantize: keep_float_ops by op type, keep_float_nodes by node-name prefix); fp32 inputs and outputs
    kept so callers do not change."""
    import warnings

    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(source))
    separate_outputs(model)
    settings = settings or {}
    op_types, nodes = kept_op_types(model, settings, label), kept_nodes(model, settings, label)
    constants_to_initializers(model, set(nodes) | {n.name for n in model.graph.node if n.op_type in op_types})
    casts = {node.name for node in model.graph.node if node.op_type == "Cast"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns for every weight below fp16's smallest normal number
        model = float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=float16.DEFAULT_OP_BLOCK_LIST + op_types, node_block_list=nodes)
    bypass_round_trips(model, casts)
    retarget_casts(model)
    onnx.save(model, str(target))


def kept_op_types(model, settings, label):
    """The op types an fp16 build keeps in fp32 (keep_float_ops); one the export lacks is an error, since the
    build would silently convert what it meant to keep."""
    present = sorted({node.op_type for node in model.graph.node})
    op_types = list(settings.get("keep_float_ops") or [])
    unknown = [op for op in op_types if op not in present]
    if unknown:
        raise ZooError(f"{label}: backend.quantize.keep_float_ops: {', '.join(unknown)} is not an op type of the "
                       f"export (its op types: {', '.join(present)})")
    return op_types


def kept_nodes(model, settings, label):
    """Names of the nodes under the keep_float_nodes prefixes (kept in fp32 by fp16 builds, their convolutions in
    float by int8 builds); a prefix of no node is an error, as in kept_op_types."""
    prefixes = tuple(settings.get("keep_float_nodes") or ())
    names = [node.name for node in model.graph.node]
    unknown = [prefix for prefix in prefixes if not any(name.startswith(prefix) for name in names)]
    if unknown:
        raise ZooError(f"{label}: backend.quantize.keep_float_nodes: {', '.join(unknown)} is the prefix of no node "
                       f"of the export (its nodes: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
    return [name for name in names if prefixes and name.startswith(prefixes)]


def constants_to_initializers(model, kept):
    """Turn the Constant nodes read only by `kept` nodes into initializers: the converter keeps a kept node's
    initializers in fp32 but sends a Constant's value through a Cast to fp16 and back (1000.25 -> 1000)."""
    readers = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.name)
    for node in list(model.graph.node):
        read_by = readers.get(node.output[0]) if node.op_type == "Constant" else None
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if read_by and read_by <= kept and value is not None:
            model.graph.initializer.append(value)
            model.graph.initializer[-1].name = node.output[0]
            model.graph.node.remove(node)


def cast_target(node):
    return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None


def bypass_round_trips(model, original):
    """Let kept nodes read each other's fp32 outputs directly instead of through the converter's Cast to fp16 and
    back. onnxconverter-common removes such a pair only where the fp16 tensor has one reader, so a kept region
    still rounded (and overflowed) fp16 wherever a tensor is read twice. Casts named in `original` (the
    model's own) stay."""
    import onnx

    producers = {output: node for node in model.graph.node for output in node.output}
    outputs = {output.name for output in model.graph.output}
    bypass = {}
    for node in model.graph.node:
        first = producers.get(node.input[0]) if cast_target(node) == onnx.TensorProto.FLOAT else None
        if (first is not None and cast_target(first) == onnx.TensorProto.FLOAT16 and node.output[0] not in outputs
                and not {node.name, first.name} & original):
            bypass[node.output[0]] = first.input[0]
    for node in model.graph.node:
        node.input[:] = [bypass.get(name, name) for name in node.input]
    drop_unread_casts(model, original)


def drop_unread_casts(model, original):
    """Remove the converter's Casts whose outputs nothing reads any more, repeatedly: a Cast to fp16 that only a
    bypassed Cast read is unread once that one is gone."""
    outputs = {output.name for output in model.graph.output}
    while True:
        read = {name for node in model.graph.node for name in node.input} | outputs
        unread = [node for node in model.graph.node
                  if cast_target(node) is not None and node.name not in original and node.output[0] not in read]
        if not unread:
            return
        for node in unread:
            model.graph.node.remove(node)


def retarget_casts(model):
    """Make every Cast to float32 whose output the converter retyped to float16 cast to float16.

    onnxconverter-common retypes the outputs of converted nodes, a Cast int64 -> float32 (an index turned into
    a value) among them, but leaves the Cast's `to`: ONNX Runtime then refuses the graph's mismatched types."""
    import onnx

    declared = {info.name: info.type.tensor_type.elem_type for info in model.graph.value_info}
    for node in model.graph.node:
        if cast_target(node) == onnx.TensorProto.FLOAT and declared.get(node.output[0]) == onnx.TensorProto.FLOAT16:
            next(a for a in node.attribute if a.name == "to").i = onnx.TensorProto.FLOAT16


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

    Only floating-point tensors (by the graph's inferred types): boolean and integer ones (masks, indices) have no
    range to quantize. Reflect/constant Pad adds no new values, so its output shares its input's range; a Conv
    whose only consumer is a Relu takes the Relu's range, because QDQ fuses the pair.
    """
    floats = float_tensors(model)
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
            if name in floats and name not in constants and name not in tensors:
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


FLOATS = (1, 10, 11, 16)  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


def float_tensors(model):
    """Names of the graph's floating-point tensors (inputs and node outputs), by ONNX shape inference's types."""
    import onnx

    typed = onnx.shape_inference.infer_shapes(model)
    infos = [*typed.graph.input, *typed.graph.value_info, *typed.graph.output]
    return {info.name for info in infos if info.type.tensor_type.elem_type in FLOATS}


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
    """Convolutions kept in float: by name (skip_nodes), by position among the Convs (skip_conv_layers,
    negative counts from the end) and by node-name prefix (keep_float_nodes, as fp16 builds keep nodes)."""
    if settings.get("keep_float_ops"):
        raise ZooError(f"{label}: backend.quantize.keep_float_ops: an int8 build quantizes only convolutions; "
                       f"keep chosen ones in float with skip_nodes or keep_float_nodes")
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    chosen = list(settings.get("skip_nodes") or [])
    unknown = [name for name in chosen if name not in convs]
    if unknown:  # a misspelt name would silently quantize the node it meant to keep in float
        raise ZooError(f"{label}: backend.quantize.skip_nodes: {', '.join(unknown)} is not a Conv of the export "
                       f"(its Convs: {', '.join(convs[:4])}{', ...' if len(convs) > 4 else ''})")
    for index in settings.get("skip_conv_layers") or []:
        if -len(convs) <= index < len(convs):
            chosen.append(convs[index])
    kept = set(kept_nodes(model, settings, label))
    return sorted(set(chosen) | {name for name in convs if name in kept})


def nncf_int8(job):
    """OpenVINO int8 through NNCF's post-training quantization (`backend.quantize.engine: nncf`): the fp32 IR
    quantized on the build yaml's calibration set; skip_nodes / skip_conv_layers stay in float. With
    `accuracy_control`, NNCF's accuracy-controlled quantization returns to float, most sensitive first, only
    the layers it must for the output to stay `min_agreement_db` close to fp32's on validation images drawn
    from the calibration set (training data, never an evaluation split). Returns (openvino.Model, report)."""
    import nncf  # optional (modelzoo[nncf]); OpenVINO and NNCF load only when such a build compiles
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
    common = dict(
        subset_size=len(arrays),
        preset=nncf.QuantizationPreset.MIXED if settings.get("preset", "mixed") == "mixed"
        else nncf.QuantizationPreset.PERFORMANCE,
        fast_bias_correction=settings.get("fast_bias_correction", True),
        ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None)
    control = settings.get("accuracy_control")
    report = {"engine": "nncf", "nncf": nncf.__version__, "images": len(arrays), "float_nodes": names}
    if control:
        validation = arrays[: control.get("validation_images") or len(arrays)]
        check = agreement_check(job, ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}),
                                validation)
        quantized = nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(arrays), nncf.Dataset(check.pairs, lambda pair: pair[0]), check,
            max_drop=AGREEMENT_CAP - control["min_agreement_db"], drop_type=nncf.DropType.ABSOLUTE, **common)
        in_float = float_convolutions(quantized)
        report.update({"accuracy_control": {**control, "validation_images": len(validation),
                                            "agreement_db": check.last}, "float_nodes": in_float})
    else:
        quantized = nncf.quantize(model, nncf.Dataset(arrays), **common)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return quantized, {"calibration": report}


AGREEMENT_CAP = 100.0  # dB: fp32 against itself is identical (infinite); NNCF needs a finite reference value


class agreement_check:
    """NNCF's validation function: mean agreement (dB, capped) of a model's enhanced outputs with fp32's on the
    validation images, and the per-image values it ranks layers by. `last` keeps the latest (min, mean)."""

    def __init__(self, job, reference, images):
        self.model = job.model
        self.pairs = [(x, self.enhanced(reference, x)) for x in images]
        self.last = None

    def enhanced(self, compiled, x):
        results = compiled(x)
        return self.model.enhance([results[output] for output in compiled.outputs])

    def __call__(self, compiled, items):
        values = [min(agreement_db(self.enhanced(compiled, x), expected), AGREEMENT_CAP) for x, expected in items]
        self.last = {"min": round(min(values), 2), "mean": round(float(np.mean(values)), 2)}
        return float(np.mean(values)), values


def float_convolutions(model):
    """Friendly names of the Convolutions an OpenVINO int8 model still runs in float (no FakeQuantize on
    their weights' path)."""
    kept = []
    for op in model.get_ops():
        if op.get_type_name() != "Convolution":
            continue
        weights = op.input_value(1).get_node()
        while weights.get_type_name() in ("Convert", "Multiply", "Subtract", "Reshape"):
            weights = weights.input_value(0).get_node()
        if weights.get_type_name() != "FakeQuantize" and not is_int8_constant(weights):
            kept.append(op.get_friendly_name())
    return kept


def is_int8_constant(node):
    return node.get_type_name() == "Constant" and str(node.get_element_type()) in ("<Type: 'int8_t'>", "i8")
