"""OpenVINO on the CPU: fp32 IR from the ONNX export; int8 from the QDQ model the ONNX Runtime build writes
(its cached artifact, so one calibration serves both runtimes), or quantized by NNCF."""
import importlib.util
import logging

from modelzoo.backends import Backend
from modelzoo.errors import ZooError
from modelzoo.quantize import nncf_int8

log = logging.getLogger(__name__)


class OpenVINO(Backend):
    name = "openvino"
    description = "OpenVINO runtime (CPU plugin)"
    dtypes = ("fp32", "fp16", "int8")
    package = "openvino"
    install = "pip install openvino"

    def missing(self, build=None):
        problem = super().missing(build)
        if problem is None and quantizer(build) == "nncf" and importlib.util.find_spec("nncf") is None:
            return "an NNCF int8 build needs the 'nncf' package: pip install nncf (or 'modelzoo[nncf]')"
        return problem

    def int8_donor(self, build):
        return "onnxruntime" if quantizer(build) == "modelzoo" else None

    def compile(self, job):
        import openvino as ov  # deferred: a runtime loads only when a build of it compiles or opens

        if job.dtype == "int8" and quantizer(job.spec["backend"]) == "nncf":
            model, report = nncf_int8(job)
            job.report.update(report)
            ov.save_model(model, str(job.workdir / "model.xml"), compress_to_fp16=False)
            return ["model.xml", "model.bin"]
        if job.dtype == "fp32" or job.dtype == "fp16":
            source = job.onnx
        elif job.dtype == "int8":
            source = job.donor.workdir / "model.onnx"
            job.report.update(job.donor.report)
        else:
            raise ZooError(f"{job.label}: openvino builds fp32, fp16 or int8, not {job.dtype}")
        model = ov.convert_model(str(source))
        # fp16 compresses the stored weights; load() picks the compute precision.
        ov.save_model(model, str(job.workdir / "model.xml"), compress_to_fp16=job.dtype == "fp16")
        return ["model.xml", "model.bin"]

    def load(self, job, threads=0):
        import openvino as ov

        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY"}
        threads = threads or int(job.options.get("threads") or 0)
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        config["INFERENCE_PRECISION_HINT"] = precision(core, job.dtype)
        model = core.read_model(str(job.workdir / "model.xml"))
        return OpenVINOSession(core, model, config, label=job.label)


def quantizer(build):
    """Who quantizes an int8 build (a build yaml's backend section): modelzoo's own calibrator (a QDQ model,
    any ONNX runtime) or NNCF."""
    return ((build or {}).get("quantize") or {}).get("engine", "modelzoo")


def precision(core, dtype):
    """fp32 builds compute in f32 (the CPU plugin would otherwise pick bf16 where the CPU has it); fp16 builds
    compute in f16 where the CPU supports it, else bf16, else f32; int8 builds keep f32 around the int8 ops."""
    if dtype != "fp16":
        return "f32"
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "f16" if "FP16" in capabilities else "bf16" if "BF16" in capabilities else "f32"


class OpenVINOSession:
    """Runs the dynamic-shape model, and a static-shape copy for an input shape seen twice in a row.

    With every dimension known the CPU plugin fuses chains of element-wise operations into one kernel (its
    "Subgraph" node) and plans memory once; with dynamic shapes it runs each operation as a pass over memory.
    For a full-resolution tail such as Zero-DCE++'s eight curve iterations that halves a 720p frame's time.
    Video frames, an eval set of one size and a bench all repeat their shape; a folder of mixed sizes keeps
    the dynamic model and compiles nothing more. At most STATIC_SHAPES copies are kept.
    """

    STATIC_SHAPES = 2

    def __init__(self, core, model, config, label=""):
        self.core, self.model, self.config, self.label = core, model, config, label
        self.dynamic = self.open(core.compile_model(model, "CPU", config))
        self.static = {}  # input shape -> (compiled, request), most recently used last
        self.last_shape = None
        self.unfixable = set()  # shapes whose static copy failed: not tried again on every call
        self.fixed = model.inputs[0].get_partial_shape().is_static  # a static export needs no copies

    @staticmethod
    def open(compiled):
        return compiled, compiled.create_infer_request()

    def session_for(self, shape):
        if self.fixed or shape in self.unfixable:
            return self.dynamic
        if shape in self.static:
            self.static[shape] = self.static.pop(shape)
            return self.static[shape]
        if shape != self.last_shape:
            self.last_shape = shape
            return self.dynamic
        try:
            fixed = self.model.clone()
            fixed.reshape({fixed.inputs[0]: list(shape)})
            self.static[shape] = self.open(self.core.compile_model(fixed, "CPU", self.config))
        except RuntimeError as exc:  # a graph that cannot take a fixed shape keeps running dynamic
            log.debug("%s: no static-shape model for %s (%s)", self.label, shape, str(exc).splitlines()[0])
            self.unfixable.add(shape)
            return self.dynamic
        while len(self.static) > self.STATIC_SHAPES:
            self.static.pop(next(iter(self.static)))
        log.debug("%s: compiled a static-shape model for %s", self.label, shape)
        return self.static[shape]

    def run(self, x, inputs=None):
        compiled, request = self.session_for(tuple(x.shape))
        # share_inputs: read x in place (a fresh array each call) instead of copying it into the request
        results = request.infer({0: x, **(inputs or {})}, share_inputs=True)  # runtime inputs by name
        return [results[output] for output in compiled.outputs]
