"""Commands that produce outputs: run, export, compile, weights."""
import json
import os
import sys
import time
from pathlib import Path

import click

from modelzoo import api, choose, imaging, ray_engine, runner, samples
from modelzoo import compile as compiler
from modelzoo import video
from modelzoo.cli import complete
from modelzoo.cli.common import cli, emit_json, quiet_logs, table
from modelzoo.tiling import DEFAULT_TILE
from modelzoo.errors import EXIT_PARTIAL, ZooError
from modelzoo.evaluate import for_task, protocols_for, read_datalist, save_npz_outputs
from modelzoo.export import export_all
from modelzoo.imaging import OUTPUT_SUFFIXES, atomic_write
from modelzoo.plugins import registry
from modelzoo.weights import import_folder


def build_options(function):
    """--build/--backend/--variant/--weights/--threads/--workspace, shared by the commands that compile."""
    options = [
        click.option("--build", default=None, shell_complete=complete.builds,
                     help="A build of the card (fp32, fp16, int8, ...) or a build yaml path."),
        click.option("--backend", default=None, shell_complete=complete.backends,
                     help="Runtime (default: the build yaml's backend.type)."),
        click.option("--variant", default=None, help="Weights variant from the card (default: the first)."),
        click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights file or folder."),
        click.option("--threads", type=click.IntRange(min=0), default=0,
                     help="Runtime threads (0: the runtime's default)."),
        click.option("--workspace", type=click.Path(path_type=Path), default=None,
                     help="Artifact cache folder (default: the build yaml's, else the user cache)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def imaging_formats():
    return OUTPUT_SUFFIXES


def engine_options(function):
    """--engine/--address/--workers: run locally or scale out on Ray (modelzoo/ray_engine.py)."""
    options = [
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help='Where to run: this process, or Ray (pip install "modelzoo[ray]").'),
        click.option("--address", default=None, help="With --engine ray: an existing Ray cluster (default: a "
                     "local Ray instance for this command)."),
        click.option("--workers", type=click.IntRange(min=0), default=0, help="With --engine ray: parallel workers (default: "
                     "run: one per node; eval: one per CPU)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command()
@click.argument("model", shell_complete=complete.models)
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="An image or a folder (default: the built-in low-light samples).")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: ./modelzoo-out/MODEL). Outputs keep the inputs' file stems.")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Folder of ground-truth images with matching names: score the outputs.")
@click.option("--protocol", default=None, help="Metric protocol from the card (default: its first).")
@click.option("--resize", is_flag=True, help="Resize each image to the vdsp params' size and the output back (the "
              "reference zoo's fixed-shape behaviour) instead of running it at its own size.")
@click.option("--native", is_flag=True, hidden=True, help="Each image at its own size: the default now.")
@click.option("--tile", type=click.IntRange(min=0), default=DEFAULT_TILE, show_default=True,
              help="Images of more than TILE x TILE pixels run in tiles of at most TILE a side, with an exact halo (0: never).")
@click.option("--format", "fmt", type=click.Choice(sorted(imaging_formats())), default=None,
              help="Output format (default: each input's own).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG and WebP quality.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Post-processing parameter or runtime input of the card, e.g. --set gamma=0.14.")
@click.option("--resume", is_flag=True, help="Skip inputs whose output already exists.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write the JSON report here too.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, help="Refuse images above this many pixels.")
@click.option("--datalist", type=click.Path(path_type=Path), default=None,
              help="Inputs from a datalist of npz files (see `modelzoo image2npz`) instead of --input.")
@click.option("--npz-out", type=click.Path(path_type=Path), default=None,
              help="Also save each image's raw outputs as DIR/<stem>.npz (output_0, output_1, ...).")
@click.option("--codec", default="h264", show_default=True, help="Video codec of enhanced videos (h264, h265, vp9).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="Video quality (constant rate factor: lower is better and larger).")
@click.option("--temporal-smoothing", "smoothing", type=click.FloatRange(0, 0.99), default=None, is_flag=False,
              flag_value=0.8, help="Videos: steady each frame's brightness decision over time (strength 0-0.99, "
              "0.8 when given without a value); lowers flicker from brightness decisions that jump frame to frame; "
              "motion-aware so moving content does not ghost (see docs/video.md for its limits).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@engine_options
@build_options
def run(model, input_path, output, reference, protocol, resize, native, tile, fmt, quality, overrides, resume,
        report, max_pixels, datalist, npz_out, codec, crf, smoothing, as_json, quiet, engine, address, workers, build,
        backend, variant, weights, threads, workspace):
    """Enhance an image, a video or a folder of them with MODEL, each at its own size (tiled above --tile).

    Videos (.mp4, .mov, .mkv, .webm, .avi) keep their frame timing, duration, rotation, audio and subtitles; the
    flicker the enhancement adds is printed per clip (1.0: none).

    Without --build and --backend, the fastest build as accurate as fp32 on this CPU's instruction-set class
    is used (one line says which and why); MODELZOO_BUILD=first uses the card's first build instead.
    """
    if resize and native:
        raise click.UsageError("--resize and --native contradict each other; --native is the default")
    native = not resize
    if engine == "ray":
        ray_engine.require()
    quiet_logs(quiet)
    m = registry().model(model)
    overrides, inputs = m.settings(parse_overrides(overrides))  # a misspelt --set fails before any work
    if max_pixels:
        os.environ["MODELZOO_MAX_PIXELS"] = str(max_pixels)
    if datalist is not None:
        files = read_datalist(datalist)
    elif input_path is None:
        root = samples.folder()
        input_path, reference = root / "low", reference or root / "high"
        click.echo(f"no --input: using the built-in low-light samples in {input_path}", err=True)
    videos = video.list_videos(input_path) if datalist is None and input_path.exists() else []
    if datalist is None:
        files = [] if videos and (input_path.is_file() or not imaging.has_images(input_path)) else \
            imaging.list_images(input_path)
    if videos:
        video.require_av()  # one line saying what to install, before any model is loaded
        if engine == "ray":
            raise ZooError("--engine ray: videos are enhanced in this process only (drop --engine ray)")
    output = output or Path("modelzoo-out") / m.name
    for folder in (output, report.parent if report else None, npz_out):
        if folder is not None:
            imaging.check_writable(folder)  # a clear error now rather than one per image after loading the model
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    if engine == "ray":  # compile here, open sessions on the workers (the leading choice: nothing is timed)
        if api.chooses(m, build, backend, variant):
            choice = choose.choose(m)
            announce(f"{m.name}: {choice.reason}")
            build, backend = choice.build, choice.backend
        job, session = ray_engine.prepare_job(m, build, backend, variant, weights, workspace, native), None
    else:
        # under the automatic choice, the tile may be smaller: the one its 12 MP peak memory fits the limit at
        # a run of videos only is chosen for their frame size (bench results nearest it rank the builds)
        size = first_frame_size(videos) if not files else None
        enhancer = api.open_any(m, build, backend, variant, weights, workspace=workspace, native=native,
                                threads=threads, tile=tile, inputs=inputs, announce=announce, size=size)
        job, session = enhancer.job, enhancer.session
    chosen = protocols_for(m, protocol or next(iter(m.card["protocols"])), for_task(registry(), m.card["task"]))[0]
    params = {**(chosen[1]["postprocess"] if protocol else {}), **overrides}
    request = runner.Request(m, session, native=native, params=params, overrides=overrides, output=output,
                             format=fmt, quality=quality, resume=resume, progress=not quiet and not as_json,
                             tile=enhancer.request.tile if engine != "ray" else tile if native else 0,
                             inputs=inputs)
    if npz_out:
        request.on_outputs = save_npz_outputs(npz_out)
    if reference:
        request.references = {p.stem: p for p in imaging.list_images(reference)}
        request.evaluator = for_task(registry(), m.card["task"])
        request.protocols = [chosen]
    if not files:  # videos only
        result = {"images": [], "failures": [], "skipped": [], "seconds": 0.0, "mean": {}}
    elif engine == "ray":
        result = ray_engine.run_with_ray(request, files, job, threads=threads, address=address, workers=workers)
    else:
        result = runner.run_files(request, files)
    if videos:
        enhancer.request.params = dict(params)  # frames get what photos get
        result["videos"] = run_videos(enhancer, videos, output, codec, crf, smoothing, quiet or as_json, result)
    job = enhancer.job if engine != "ray" else job  # under the automatic choice: the build that won
    summary = {"model": m.name, "build": job.build, "backend": job.backend.name, "dtype": job.dtype,
               "native": native, "output": str(output), **result}
    if m.runtime_inputs:
        summary["runtime_inputs"] = m.runtime_values(inputs)
    if reference:
        summary["protocol"] = chosen[0]
        summary["mean"] = result["mean"].get(chosen[0], {})
        for image in summary["images"]:
            image.update(image.pop("metrics", {}).get(chosen[0], {}))
    if report:
        atomic_write(report, json.dumps(summary, indent=2, default=str))
    if as_json:
        emit_json(summary)
    else:
        print_run(summary, request.evaluator.metrics if request.evaluator else ())
    if summary["failures"]:
        sys.exit(EXIT_PARTIAL if summary["images"] or summary.get("videos") else 1)


def first_frame_size(videos):
    """(height, width) of the first readable clip's frames, or None (a bad clip fails later, as a failure)."""
    for clip in videos:
        try:
            return video.frame_size(clip)
        except ZooError:
            continue
    return None


def run_videos(enhance, videos, output, codec, crf, smoothing, quiet, result):
    """Each clip into OUTPUT with the same name; a failed clip is a failure like a failed image."""
    from tqdm import tqdm

    done = []
    output.mkdir(parents=True, exist_ok=True)
    for clip in videos:
        target = output / clip.name
        bar = tqdm(desc=clip.name, unit="frame", disable=quiet, leave=False)

        def progress(frames, total):
            bar.total = total
            bar.update(frames - bar.n)

        try:
            report = enhance.video(clip, target, codec=codec, crf=crf, smoothing=smoothing or 0.0, progress=progress)
        except ZooError as exc:
            result["failures"].append({"input": str(clip), "error": str(exc)})
            continue
        finally:
            bar.close()
        done.append({"input": str(clip), "output": str(target), **report})
    return done


def print_run(summary, metrics=()):
    """A table of the images (with the evaluator's declared metrics when scored) and a closing line."""
    rows = [[Path(i["input"]).name, *(m.format(i.get(m.name)) for m in metrics), f"{i['seconds']:.3f}"]
            for i in summary["images"]]
    if rows:
        click.echo(table(rows, ["image", *(m.name for m in metrics), "seconds"]))
    if summary.get("mean"):
        means = ", ".join(f"{m.label} {m.format(summary['mean'].get(m.name))}{' ' + m.unit if m.unit else ''}"
                          for m in metrics)
        click.echo(f"mean: {means} ({summary['protocol']} protocol)")
    for failure in summary["failures"]:
        cause = failure["error"]
        line = cause if cause.startswith(failure["input"]) else f"{failure['input']}: {cause}"
        click.secho(f"failed: {' '.join(line.split())}", fg="red", err=True)
    for clip in summary.get("videos", []):
        flicker = "-" if clip["flicker"] is None else f"{clip['flicker']:.3f}"
        click.echo(f"{Path(clip['input']).name}: {clip['frames']} frames at {clip['fps']} frames/s; flicker "
                   f"{flicker} (output's frame-to-frame change / input's; 1.0 adds none)"
                   + (f", temporal smoothing {clip['smoothing']}" if clip["smoothing"] else ""))
    written = f"{len(summary['images'])}"
    if summary.get("videos"):
        clips = len(summary["videos"])
        written = f"{written} images and {clips} video{'s' if clips > 1 else ''}" if summary["images"] else \
            f"{clips} video{'s' if clips > 1 else ''}"
    click.echo(f"{written} written to {summary['output']}, {len(summary['failures'])} failed, "
               f"{len(summary['skipped'])} skipped ({summary['build']}, {summary['backend']} {summary['dtype']})")


def parse_overrides(overrides):
    """--set KEY=VALUE pairs as strings; Model.check_params converts them to the card's declared types."""
    params = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ZooError(f"--set {item}: expected KEY=VALUE")
        params[key] = value
    return params


@cli.command()
@click.argument("model", shell_complete=complete.models)
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Folder for the exports (default: the artifact cache).")
@click.option("--json", "as_json", is_flag=True)
@build_options
def export(model, output, as_json, build, backend, variant, weights, threads, workspace):
    """TorchScript and ONNX (static and dynamic H/W) with the plugin's deploy patch, parity-checked."""
    m = registry().model(model)
    job = compiler.prepare(m, build, "torch", variant, weights, workspace=workspace)
    folder = output or Path(job.workspace) / m.name / "exports"
    report = export_all(job, folder)
    if as_json:
        return emit_json(report)
    for name, value in report.items():
        detail = f"parity max abs diff {value['max_abs_diff']:.2e}" if isinstance(value, dict) else value
        click.echo(f"{name}: {detail}")
    click.echo(f"exports in {folder}")


@cli.command("compile")
@click.argument("model", shell_complete=complete.models)
@click.option("--native", is_flag=True, help="Build the dynamic-shape variant.")
@click.option("--force", is_flag=True, help="Rebuild even when cached.")
@click.option("--json", "as_json", is_flag=True)
@build_options
def compile_command(model, native, force, as_json, build, backend, variant, weights, threads, workspace):
    """Build MODEL for a runtime into the artifact cache (the reference zoo's `vamc compile`)."""
    m = registry().model(model)
    builds = m.builds if build == "all" else [build]
    results = []
    for name in builds:
        started = time.perf_counter()
        job = compiler.prepare(m, name, backend, variant, weights, native=native, workspace=workspace)
        manifest = compiler.ensure(job, force=force)
        results.append({"build": job.build, "backend": job.backend.name, "dtype": job.dtype,
                        "cache": manifest["cache"], "seconds": round(time.perf_counter() - started, 2),
                        "artifact": str(job.workdir), "report": manifest.get("report", {})})
    if as_json:
        return emit_json(results)
    for r in results:
        click.echo(f"{r['build']} ({r['backend']} {r['dtype']}): cache {r['cache']} in {r['seconds']} s -> {r['artifact']}")


@cli.group()
def weights():
    """Manage weight files."""


@weights.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "names", multiple=True, shell_complete=complete.models,
              help="Only these models (default: all).")
def weights_import(folder, names):
    """Copy weights found in FOLDER into the user cache after checking their sha256."""
    for m in registry().models.values():
        if names and m.name not in names:
            continue
        for variant, target in import_folder(m, folder):
            click.echo(f"{m.name}/{variant}: {target}")
