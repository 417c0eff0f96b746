"""OpenVINO on the CPU: fp32 IR from the ONNX export; int8 from the QDQ model the ONNX Runtime build writes
(its cached artifact, so one calibration serves both runtimes), or quantized by NNCF."""
import importlib.util

from modelzoo.backends import Backend
from modelzoo.errors import ZooError
from modelzoo.quantize import nncf_int8


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
        compiled = core.compile_model(core.read_model(str(job.workdir / "model.xml")), "CPU", config)
        return OpenVINOSession(compiled)


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
    def __init__(self, compiled):
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, x, inputs=None):
        results = self.request.infer({0: x, **(inputs or {})})  # runtime inputs by name
        return [results[output] for output in self.compiled.outputs]
