"""The official URetinex-Net and URetinex-Net++ code from ../shared/reference, run as released, for side-by-side
tests: their test.py / evaluate.py Inference classes, imported with the modules they import but never use at test
time stubbed (torchvision, matplotlib, turtle, lib2to3, the unreleased loss/ and data/ packages), their torch.load
given map_location cpu and the argparse Namespace allow-list (weights_only stays on), and tensor.cuda() a no-op.
sys.modules, sys.path and torch are restored on exit."""
import argparse
import contextlib
import importlib.util
import sys
import types

import torch

from conftest import SHARED

STUBS = {
    "torchvision": {}, "torchvision.transforms": {"ToTensor": lambda: None, "Compose": lambda ops: None,
                                                  "Grayscale": None},
    "torchvision.utils": {"save_image": None}, "matplotlib": {}, "matplotlib.pyplot": {}, "turtle": {"forward": None},
    "lib2to3": {}, "lib2to3.pgen2": {}, "lib2to3.pgen2.pgen": {"NFAState": None},
    "loss": {}, "loss.metric": {"PSNR": None, "SSIM": None}, "data": {},
    "data.preprocessing": {"InitailProcessing": None},
}


@contextlib.contextmanager
def official(name):
    """Yields import_script(stem) -> the official module `stem`.py of ../shared/reference/<name>."""
    folder = SHARED / "reference" / name
    stubs = {module: types.ModuleType(module) for module in STUBS}
    for module, attributes in STUBS.items():
        stubs[module].__dict__.update(attributes)
    stubs["network"] = types.ModuleType("network")
    stubs["network"].__path__ = [str(folder / "network")]
    names = [*stubs, "utils", *(f"network.{path.stem}" for path in (folder / "network").glob("*.py"))]
    saved = {module: sys.modules.get(module) for module in names}
    load, cuda = torch.load, torch.Tensor.cuda

    def import_script(stem):
        spec = importlib.util.spec_from_file_location(f"official_{stem}", folder / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    sys.modules.update(stubs)
    sys.path.insert(0, str(folder))
    torch.load = lambda *args, **kwargs: load(*args, map_location="cpu", **kwargs)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        with torch.serialization.safe_globals([argparse.Namespace]), torch.no_grad():
            yield import_script
    finally:
        torch.load, torch.Tensor.cuda = load, cuda
        sys.path.remove(str(folder))
        for module, value in saved.items():
            if value is None:
                sys.modules.pop(module, None)
            else:
                sys.modules[module] = value
