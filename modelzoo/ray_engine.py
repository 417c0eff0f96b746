"""`--engine ray`: the run and eval steps scaled out on Ray (an optional extra: pip install "modelzoo[ray]").

run: Ray Data takes the list of input paths (`from_items`, not `read_images`: decoding stays
imaging.read_rgb, so the outputs are byte for byte the local engine's); `map_batches` hands batches of paths
to a pool of actors, each of which opens the compiled model once and enhances its batches with
runner.run_files (the local pipeline: per-file failures, atomic writes, prefetching). The driver compiles
first, so workers sharing its artifact cache only load. Actors ask for half a CPU each: on a 2-CPU machine,
whole-CPU actors leave nothing for Ray Data's own tasks and the pipeline stalls.

eval: one Ray task per (model, build, dataset) job, each calling evaluate.evaluate.

Without --address a local Ray instance starts and stops with the command (or the one already running in this
process is used); with --address the command joins that cluster as a driver. On a cluster every node must see
the inputs, the output folder, the weights and (for --resume and results) the same paths: a shared filesystem.
"""
import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from modelzoo import compile as compiler
from modelzoo import runner
from modelzoo.errors import ZooError

INSTALL = 'pip install "modelzoo[ray]"'
OBJECT_STORE = 300 * 1024**2
ENV_PREFIX = "MODELZOO_"
CPUS_PER_ACTOR = 0.5
NICENESS = "RAY_worker_niceness"
logger = logging.getLogger(__name__)


def require():
    """Import ray and ray.data, or raise a one-line ZooError saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ZooError(f"--engine ray needs Ray, which is not installed: {INSTALL} (or pip install 'ray[data]')") \
            from None
    return ray


def cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def connected(address=None, num_cpus=None):
    """Ray for the length of a command: join `address`, reuse this process's Ray, or start (and stop) a local one."""
    ray = require()
    if ray.is_initialized():
        yield ray
        return
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    runtime_env = {"env_vars": env} if env else None
    with contextlib.redirect_stdout(sys.stderr):  # keep --json output clean
        if address:
            try:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            except ConnectionError as exc:
                raise ZooError(f"--address {address}: cannot connect to a Ray cluster ({exc}; a cluster started with "
                               f"token authentication needs RAY_AUTH_MODE=token and its token here, see "
                               f"docs/scale-out.md)") from None
        else:
            # Ray starts workers at nice 15; a local instance does this command's work, at its priority
            saved = os.environ.get(NICENESS)
            os.environ.setdefault(NICENESS, "0")
            try:
                ray.init(address="local", num_cpus=num_cpus or cpus(), include_dashboard=False,
                         object_store_memory=OBJECT_STORE, log_to_driver=False, runtime_env=runtime_env)
            finally:
                if saved is None:
                    os.environ.pop(NICENESS, None)
    try:
        yield ray
    finally:
        ray.shutdown()


def prepare_job(model, build=None, backend=None, variant=None, weights=None, workspace=None, native=False,
                options=None):
    """Prepare and compile on the driver (workers on the same artifact cache then only load); no session."""
    from modelzoo.api import prepare

    require()
    job = prepare(model, build, backend, variant, weights, workspace=workspace, native=native, options=options)
    compiler.ensure(job)
    return job


def job_parameters(job):
    """What a worker needs to prepare the same job itself: names and paths, never the session."""
    try:
        build = job.build if job.model.build_path(job.build).resolve() == Path(job.spec_path).resolve() \
            else str(job.spec_path)
    except ZooError:
        build = str(job.spec_path)
    return {"model": job.model.name, "build": build, "backend": job.backend.name, "variant": job.variant,
            "weights": str(job.weights) if isinstance(job.weights, Path) else None, "native": job.native, "workspace": str(job.workspace),
            "options": dict(job.options)}


class Enhancer:
    """A Ray Data actor: opens the compiled model once, then enhances batches of input paths."""

    def __init__(self, parameters, request, threads=0, per_node=1, cwd=None):
        from modelzoo.api import open_enhancer
        from modelzoo.evaluate import for_task
        from modelzoo.plugins import registry

        _enter(cwd)
        parameters = dict(parameters)
        model = registry().model(parameters.pop("model"))
        threads = threads or max(1, cpus() // max(1, per_node))
        session = open_enhancer(model, **parameters, threads=threads).session
        self.request = dataclasses.replace(request, model=model, session=session, progress=False)
        if request.references:
            self.request.evaluator = for_task(registry(), model.card["task"])

    def __call__(self, batch):
        files = [str(p) for p in batch["path"]]
        try:
            report = runner.run_files(self.request, files)
        except Exception as exc:  # noqa: BLE001 - not a per-file ZooError: report each file of the batch
            report = {"images": [], "skipped": [], "failures": []}
            for source in files:
                try:
                    one = runner.run_files(self.request, [source])
                except Exception as error:  # noqa: BLE001
                    one = {"images": [], "skipped": [], "failures": [
                        {"input": source, "error": f"{source}: {type(error).__name__}: {error or exc}"}]}
                for key in report:
                    report[key] += one[key]
        report = {key: report[key] for key in ("images", "failures", "skipped")}
        return {"report": [json.dumps(report, default=str)]}


def run_with_ray(request, files, job, threads=0, address=None, workers=0, batch_size=0):
    """runner.run_files on a Ray cluster: same request, same report (images, failures, skipped, seconds, mean).

    `request` is the local one without a session; `job` was compiled by prepare_job. `workers` actors (default:
    one per node) each hold a session; `batch_size` images go to an actor at a time (default: about four
    batches per worker, at most 8 images).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    planned, report = runner.plan(request, files)  # resume and same-stem checks on the driver, as run does
    todo = [str(source) for source, _ in planned]
    if todo:
        with connected(address) as ray:
            import ray.data

            nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
            workers = max(1, workers or len(nodes))
            per_node = math.ceil(workers / max(1, len(nodes)))
            batch_size = batch_size or max(1, min(8, math.ceil(len(todo) / (4 * workers))))
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            logging.getLogger("ray.data").setLevel(logging.WARNING)
            shipped = dataclasses.replace(request, model=None, session=None, evaluator=None, progress=False,
                                          on_result=None)
            dataset = ray.data.from_items([{"path": p} for p in todo],
                                          override_num_blocks=math.ceil(len(todo) / batch_size))
            results = dataset.map_batches(
                Enhancer, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=CPUS_PER_ACTOR, fn_constructor_kwargs={
                    "parameters": job_parameters(job), "request": shipped, "threads": threads, "per_node": per_node,
                    "cwd": os.getcwd()})
            bar = tqdm(total=len(todo), desc=f"{request.model.name} (ray x{workers})", unit="img",
                       disable=not request.progress, leave=False)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    for row in results.iter_rows():
                        part = json.loads(row["report"])
                        for key in ("images", "failures", "skipped"):
                            report[key] += part[key]
                        bar.update(len(part["images"]) + len(part["failures"]) + len(part["skipped"]))
            finally:
                bar.close()
    order = {str(p): i for i, p in enumerate(files)}
    for key in ("images", "failures"):
        report[key].sort(key=lambda r: order.get(r["input"], len(order)))
    report["skipped"].sort(key=lambda s: order.get(s, len(order)))
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["mean"] = runner.means(report["images"], request.protocols)
    return report


def _enter(cwd):
    """Relative paths mean what they meant to the driver (same node, or the same path on a shared filesystem)."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def _evaluate_task(parameters, argv, cwd, per_node=1):
    """One evaluation on a worker; returns ("ok", document) or ("error", one line)."""
    from modelzoo.evaluate import evaluate
    from modelzoo.plugins import registry

    saved, sys.argv, here = sys.argv, list(argv), os.getcwd()  # provenance.command: the driver's command
    _enter(cwd)
    try:
        parameters = dict(parameters)
        model = registry().model(parameters.pop("model"))
        parameters["threads"] = parameters.get("threads") or max(1, cpus() // max(1, per_node))  # no oversubscription
        return "ok", evaluate(model, **parameters, progress=False, log=lambda m: None)
    except ZooError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - one line back to the driver
        return "error", f"unexpected {type(exc).__name__}: {exc}"
    finally:
        sys.argv = saved
        os.chdir(here)


def eval_with_ray(jobs, address=None, workers=0, log=logger.info):
    """Evaluate each job (the keyword arguments of evaluate.evaluate) as its own Ray task.

    Returns (documents in job order, failures) as the local engine's loop does: a failed job is reported on
    one line (`failed: MODEL/BUILD: cause`) and the others still run; a single job that fails, or all of them
    failing, raises ZooError. `workers` caps the tasks in flight (default: one per CPU of the cluster).
    Documents are also written by the driver into each job's results_dir, so they land beside the command
    even without a shared filesystem.
    """
    documents, errors = [None] * len(jobs), []
    with connected(address) as ray:
        total = int(ray.cluster_resources().get("CPU", 1))
        workers = max(1, workers or total)
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
        per_node = math.ceil(min(workers, len(jobs)) / max(1, len(nodes)))
        task = ray.remote(num_cpus=min(1.0, total / workers))(_evaluate_task)
        labels, pending, waiting = {}, list(enumerate(jobs)), {}
        while pending or waiting:
            while pending and len(waiting) < workers:
                index, job = pending.pop(0)
                parameters = {**job, "model": getattr(job["model"], "name", job["model"])}
                labels[index] = f"{parameters['model']}/{parameters.get('build') or 'fp32'}"
                waiting[task.remote(parameters, sys.argv, os.getcwd(), per_node)] = index
            done, _ = ray.wait(list(waiting), num_returns=1)
            index = waiting.pop(done[0])
            status, value = ray.get(done[0])
            if status == "ok":
                documents[index] = value
                if jobs[index].get("results_dir"):
                    _write_results(jobs[index], value)
                log(f"{labels[index]} on {value['dataset']['name']}: done ({value['timing']['seconds']} s)")
            else:
                errors.append(ZooError(value))
                if len(jobs) > 1:
                    logger.error(f"failed: {labels[index]}: {value}")
    if len(jobs) == 1 and errors:
        raise errors[0]
    documents = [d for d in documents if d is not None]
    if not documents:
        raise ZooError("no evaluation finished")
    return documents, errors


def _write_results(job, document):
    """The document merged where a local run merges it (the same bytes as evaluate's own write on a shared
    filesystem, where the worker has merged it already)."""
    from modelzoo.evaluate import write_results
    from modelzoo.plugins import registry

    model = job["model"] if not isinstance(job["model"], str) else registry().model(job["model"])
    write_results(job["results_dir"], model, document)
