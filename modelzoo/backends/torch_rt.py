"""PyTorch eager (CPU or CUDA): the reference every other backend is checked against.

Build options (a build yaml's backend.compile, or `options=` to modelzoo.compile.prepare):
  device         auto (default: cuda when a GPU is present, else cpu), cpu, cuda or cuda:N
  channels_last  NHWC memory format (default: on for CUDA, off for the CPU)
  torch_compile  false (default), true, or a torch.compile mode such as max-autotune
  threads        intra-op threads on the CPU (0: torch's default)
fp16 and bf16 run on CUDA only; on a machine without a GPU they fail with a one-line ZooError saying so.
"""
import numpy as np

from modelzoo.backends import Backend
from modelzoo.errors import ZooError

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def cuda_available():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def resolve_device(requested):
    """The device a build runs on; ZooError when CUDA is asked for and absent."""
    requested = str(requested or "auto").lower()
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise ZooError(f"device {requested}: no CUDA GPU is present on this machine (torch "
                       f"{_torch_version()}); use device cpu")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ZooError(f"device {requested}: the torch backend runs on cpu or cuda")
    return requested


def _torch_version():
    import torch

    return torch.__version__


class Torch(Backend):
    name = "torch"
    description = "PyTorch eager; CUDA with fp16/bf16, channels_last and torch.compile when a GPU is present"
    dtypes = ("fp32", "fp16", "bf16")
    package = "torch"
    install = "pip install torch"
    needs_onnx = False

    def compile(self, job):
        return []  # runs the plugin's network directly; nothing to build

    def load(self, job, threads=0):
        import torch

        device = resolve_device(job.options.get("device"))
        dtype = getattr(torch, DTYPES[job.dtype])
        if device == "cpu" and job.dtype != "fp32":
            raise ZooError(f"{job.label}: the torch backend runs {job.dtype} only on CUDA, and no GPU is present "
                           f"(torch {torch.__version__})")
        threads = threads or int(job.options.get("threads") or 0)
        if threads:
            torch.set_num_threads(threads)
        channels_last = job.options.get("channels_last")
        channels_last = device != "cpu" if channels_last is None else bool(channels_last)
        module = job.torch_module().to(device=device, dtype=dtype)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        compiled = job.options.get("torch_compile")
        if compiled:
            mode = compiled if isinstance(compiled, str) else None
            module = torch.compile(module, mode=mode)
        return TorchSession(module, device, dtype, channels_last)


class TorchSession:
    """run(float32 NCHW numpy) -> float32 numpy outputs; the copy back to the host synchronises CUDA."""

    def __init__(self, module, device, dtype, channels_last=False):
        self.module, self.device, self.dtype, self.channels_last = module, device, dtype, channels_last

    def run(self, x, inputs=None):
        import torch

        with torch.inference_mode():
            extras = [torch.from_numpy(v).to(self.device, self.dtype) for v in (inputs or {}).values()]  # card order
            tensor = torch.from_numpy(np.ascontiguousarray(x))
            if self.device != "cpu":
                tensor = tensor.pin_memory().to(self.device, non_blocking=True)
            tensor = tensor.to(dtype=self.dtype)
            if self.channels_last:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            outputs = self.module(tensor, *extras)
            return [o.float().contiguous().cpu().numpy() for o in outputs]
