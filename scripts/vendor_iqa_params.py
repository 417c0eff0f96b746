"""Copy the NIQE and BRISQUE parameter files into models/lowlight/iqa_params/, once, by a maintainer.

The BRISQUE feature ranges ship as a pickle (a dict of two lists of floats); they are read here with an
unpickler that refuses every class, so nothing but plain lists, dicts and floats can load, and written as JSON.
Nothing unpickles at run time.

    python scripts/vendor_iqa_params.py ../shared/reference/iqa
"""
import hashlib
import io
import json
import pickle
import shutil
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "models" / "lowlight" / "iqa_params"


class PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only plain lists, dicts and floats are expected")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(source):
    source = Path(source)
    mmagic, brisque = source / "mmagic-1.2.0", source / "brisque-0.2.0"
    shutil.copyfile(mmagic / "niqe_pris_params.npz", TARGET / "niqe_pris_params.npz")
    shutil.copyfile(mmagic / "LICENSE", TARGET / "LICENSE-mmagic")
    shutil.copyfile(brisque / "svm.txt", TARGET / "brisque_svm.txt")
    shutil.copyfile(brisque / "LICENSE", TARGET / "LICENSE-brisque")
    ranges = PlainUnpickler(io.BytesIO((brisque / "normalize.pickle").read_bytes())).load()
    low, high = [float(v) for v in ranges["min_"]], [float(v) for v in ranges["max_"]]
    assert len(low) == len(high) == 36, "36 BRISQUE features expected"
    (TARGET / "brisque_range.json").write_text(json.dumps(
        {"lower": -1, "upper": 1, "min": low, "max": high,
         "source_sha256": sha256(brisque / "normalize.pickle")}, indent=1) + "\n")
    for name in ("niqe_pris_params.npz", "brisque_svm.txt", "brisque_range.json"):
        print(f"{name}  sha256 {sha256(TARGET / name)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/iqa")
