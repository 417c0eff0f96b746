"""`modelzoo serve`: every model behind one HTTP service and a page (modelzoo/serve; the serve extra)."""
import ipaddress
import socket
from pathlib import Path

import click

from modelzoo.cli import cli, complete
from modelzoo.errors import ZooError


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --api-key-file or --insecure.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--model", "models", multiple=True, shell_complete=complete.models,
              help="Serve only these models (default: every registered model).")
@click.option("--max-models", type=click.IntRange(min=1), default=4, show_default=True,
              help="Sessions kept open at once; the least recently used beyond this is closed.")
@click.option("--queue", type=click.IntRange(min=0), default=16, show_default=True,
              help="Requests that may wait for a worker; beyond that, 503 with Retry-After.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inferences run at once (each runtime already uses every core for one image).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds a request may wait and run (after its model is loaded) before a 504.")
@click.option("--max-bytes", type=click.IntRange(min=1), default=50 * 1024 * 1024, show_default=True,
              help="Largest request body.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse images above this many pixels, read from the header before decoding (default: "
                   "`modelzoo run`'s, MODELZOO_MAX_PIXELS or 120 MP).")
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file of API keys, one a line: requests need Authorization: Bearer KEY (or X-API-Key).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without API keys.")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="Allow browser pages from this origin to call the API (CORS is off without it).")
@click.option("--drain", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="On SIGTERM, seconds to let requests in flight finish while new ones are refused.")
def serve(host, port, models, max_models, queue, workers, timeout, max_bytes, max_pixels, api_key_file, insecure,
          cors_origins, drain):
    """Serve every model over HTTP with a page at / (pip install -e ".[serve]").

    POST /v1/models/NAME/enhance with the image as the body gives the enhanced image, the bytes
    `modelzoo run` writes; see docs/serving.md.
    """
    try:
        from modelzoo.serve.app import Settings, create_app
        from modelzoo.serve.server import run
    except ImportError as exc:
        raise ZooError(f'modelzoo serve needs the serve extra: pip install -e ".[serve]" ({exc})') from None
    keys = read_keys(api_key_file) if api_key_file else []
    if not is_loopback(host) and not keys and not insecure:
        raise click.UsageError(f"--host {host} is reachable from other machines: give --api-key-file, or "
                               "--insecure to serve without keys")
    settings = Settings(models=list(models), max_models=max_models, queue=queue, workers=workers, timeout=timeout,
                        max_bytes=max_bytes, max_pixels=max_pixels, api_keys=keys, cors_origins=list(cors_origins))
    app = create_app(settings)
    click.echo(f"serving {', '.join(app.state.service.names)} on http://{display(host)}:{port}/ "
               f"(queue {queue}, {workers} worker{'s' if workers > 1 else ''}; Ctrl-C or SIGTERM to stop)", err=True)
    run(app, host, port, drain)


def read_keys(path):
    keys = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not keys:
        raise ZooError(f"{path}: no API keys (one a line)")
    return keys


def is_loopback(host):
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


def display(host):
    return f"[{host}]" if ":" in host else host
