"""PyTorch eager (CPU or CUDA): the reference every other backend is checked against."""
import numpy as np

from modelzoo.backends import Backend
from modelzoo.errors import ZooError


class Torch(Backend):
    name = "torch"
    description = "PyTorch eager; CUDA with fp16/bf16, channels_last and torch.compile when a GPU is present"
    dtypes = ("fp32", "fp16", "bf16")
    package = "torch"
    install = "pip install torch"

    def compile(self, job):
        return []  # runs the plugin's network directly; nothing to build

    def load(self, job, threads=0):
        import torch

        device = job.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[job.dtype]
        if device == "cpu" and dtype != torch.float32:
            raise ZooError(f"{job.label}: the torch backend runs {job.dtype} only on CUDA, and no GPU is present")
        if threads:
            torch.set_num_threads(threads)
        module = job.torch_module().to(device=device, dtype=dtype)
        if device != "cpu":
            module = module.to(memory_format=torch.channels_last)
        if job.options.get("torch_compile"):
            module = torch.compile(module)
        return TorchSession(module, device, dtype)


class TorchSession:
    def __init__(self, module, device, dtype):
        self.module, self.device, self.dtype = module, device, dtype

    def run(self, x):
        import torch

        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)
            if self.device != "cpu":
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            outputs = self.module(tensor)
            return [o.float().cpu().numpy() for o in outputs]
