"""NIQE + BRISQUE speed on one core (issue 20: both together at most 1 s per megapixel).

Pins every thread pool to one thread before numpy loads, then times niqe() and brisque() (parameters loaded
beforehand) on: baboon.png tiled to about 1 MP, a DICM photo (640x480) and a 4000x3000 mosaic of DICM photos.
Prints CPU seconds per megapixel for each metric and both. A benchmark, not a test: the time depends on the machine
and its load. Usage: python benchmarks/iqa_speed.py [SHARED_DIR]
"""
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from modelzoo import imaging  # noqa: E402
from modelzoo_models.lowlight import iqa  # noqa: E402


def best_of(function, image, repeats=3):
    """The best of `repeats` runs in CPU seconds of this (single-threaded) process: one core's time, which other
    processes on a shared machine do not inflate the way they inflate wall time."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        function(image)
        times.append(time.process_time() - started)
    return min(times)


def main(shared):
    cv2.setNumThreads(1)
    baboon = imaging.read_rgb(shared / "reference" / "iqa" / "baboon.png")
    dicm = sorted((shared / "data" / "DICM").glob("*.jpg"))
    photo = imaging.read_rgb(dicm[1])
    tiles = [imaging.read_rgb(p) for p in dicm[:42]]
    mosaic = np.vstack([np.hstack([cv2.resize(t, (640, 480)) for t in tiles[r * 7:(r + 1) * 7]])
                        for r in range(6)])[:3000, :4000]
    images = {"baboon 2x2 (~1 MP)": np.tile(baboon, (2, 2, 1)), f"DICM {dicm[1].name}": photo,
              "DICM mosaic 4000x3000": mosaic}
    iqa.niqe_model(), iqa.brisque_model()  # load the parameters once, as an evaluation does
    print(f"{'image':24} {'MP':>6} {'NIQE s/MP':>10} {'BRISQUE s/MP':>13} {'both s/MP':>10}")
    for name, image in images.items():
        megapixels = image.shape[0] * image.shape[1] / 1e6
        niqe, brisque = best_of(iqa.niqe, image), best_of(iqa.brisque, image)
        print(f"{name:24} {megapixels:6.2f} {niqe / megapixels:10.3f} {brisque / megapixels:13.3f} "
              f"{(niqe + brisque) / megapixels:10.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent.parent / "shared")
