"""ONNX Runtime on the CPU: fp32 as exported, fp16 through onnxconverter-common, int8 by static QDQ quantization."""
import shutil

from modelzoo.backends import Backend
from modelzoo.errors import ZooError
from modelzoo.quantize import to_fp16, to_int8


class OnnxRuntime(Backend):
    name = "onnxruntime"
    description = "ONNX Runtime (CPU execution provider)"
    dtypes = ("fp32", "fp16", "int8")
    package = "onnxruntime"
    install = "pip install onnxruntime"

    def compile(self, job):
        target = job.workdir / "model.onnx"
        if job.dtype == "fp32":
            shutil.copyfile(job.onnx, target)
        elif job.dtype == "fp16":
            to_fp16(job.onnx, target, job.spec["backend"].get("quantize"), job.spec_path)
        elif job.dtype == "int8":
            job.report.update(to_int8(job, target))
        else:
            raise ZooError(f"{job.label}: onnxruntime builds fp32, fp16 or int8, not {job.dtype}")
        return ["model.onnx"]

    def load(self, job, threads=0):
        import onnxruntime as ort  # deferred: a runtime loads only when a session of it opens

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or int(job.options.get("threads") or 0)
        options.log_severity_level = 3
        # Memory patterns plan one buffer layout per input shape; with the shapes of a tiled photo they kept
        # 2.7 GB at peak for a 6 MP image against 1.35 GB without, at the same speed (docs/performance.md).
        options.enable_mem_pattern = not job.native
        session = ort.InferenceSession(str(job.workdir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        return OrtSession(session)


class OrtSession:
    def __init__(self, session):
        self.session = session
        self.input = session.get_inputs()[0].name

    def run(self, x, inputs=None):
        return self.session.run(None, {self.input: x, **(inputs or {})})
