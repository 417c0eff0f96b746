"""How much an end-to-end `modelzoo eval` costs over its bare inferences (issue: at most 15% more).

Runs, in one process and on one compiled session: 15 bare session.run calls on the preprocessed LOL eval15
inputs (decoding done beforehand), then the full evaluation (decode, infer, post-process both protocols,
score, checkpoint). Prints both wall times and their ratio. Usage: python benchmarks/eval_overhead.py [BUILD]
"""
import json
import sys
import tempfile
import time

from modelzoo import compile as compiler
from modelzoo import imaging
from modelzoo.evaluate import evaluate
from modelzoo.plugins import registry


def main(build="fp32", model_name=None):
    reg = registry()
    model = reg.model(model_name or next(iter(reg.models)))
    items = reg.dataset(model.card["datasets"][0]).items()
    job = compiler.prepare(model, build)
    session = compiler.load(job, log=lambda m: None)
    inputs = [model.preprocess(imaging.read_rgb(i.input), model.vdsp()) for i in items]
    session.run(inputs[0])  # warm-up
    started = time.perf_counter()
    for x in inputs:
        session.run(x)
    bare = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as results:
        started = time.perf_counter()
        evaluate(model, model.card["datasets"][0], build, results_dir=results, progress=False, log=lambda m: None)
        full = time.perf_counter() - started
    print(json.dumps({"model": model.name, "build": build, "images": len(items), "bare_inference_s": round(bare, 2),
                      "end_to_end_eval_s": round(full, 2), "ratio": round(full / bare, 3)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
