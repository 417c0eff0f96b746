"""The HTTP routes: enhance, cards, KServe v2 health and metadata, Prometheus metrics and the page.

Every error is a one-line JSON body {"error": "..."} with a 4xx status (5xx only for a model that cannot be
loaded or a server fault); nothing in a request names a file on the server (builds and variants are names
from the card). Bodies are limited in bytes before they are read and in pixels before they are decoded.
"""
import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

import modelzoo
from modelzoo import imaging
from modelzoo.errors import ZooError
from modelzoo.plugins import registry
from modelzoo.serve.metrics import Metrics
from modelzoo.serve.sessions import Full, LoadFailed, Sessions, WorkQueue

logger = logging.getLogger(__name__)
OPTIONS = ("build", "backend", "variant", "format", "quality")  # query parameters that are not the card's
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
               "BMP": "image/bmp"}
# Bodies taken as the image file itself: curl --data-binary and urllib label raw data as a form by default.
RAW_TYPES = ("application/octet-stream", "application/x-www-form-urlencoded")
PUBLIC = ("/", "/v2/health/live", "/v2/health/ready")  # answered without an API key (the page, probes)
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass
class Settings:
    """What `modelzoo serve`'s options set; the defaults are the command's."""

    models: list = field(default_factory=list)  # names served (empty: every registered model)
    max_models: int = 4
    queue: int = 16
    workers: int = 1
    timeout: float = 60.0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int | None = None  # None: imaging's limit, as `modelzoo run`
    api_keys: list = field(default_factory=list)
    cors_origins: list = field(default_factory=list)


class Refused(Exception):
    """An answer other than the image: a status and one line."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error(status, message, headers=None):
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


class Service:
    """The state behind the routes: settings, open sessions, the work queue, metrics, the drain flag."""

    def __init__(self, settings):
        self.settings = settings
        names = settings.models or modelzoo.list_models()
        for name in names:
            registry().model(name)  # an unknown --model fails at start, not at the first request
        self.names = sorted(names)
        self.sessions = Sessions(settings.max_models)
        self.queue = WorkQueue(settings.workers, settings.queue)
        self.metrics = Metrics()
        self.draining = False

    def model(self, name):
        if name not in self.names:
            raise Refused(404, f"model '{name}': not served here (have: {', '.join(self.names)})")
        return registry().model(name)

    def close(self):
        self.queue.close()
        self.sessions.close()


def create_app(settings=None):
    """The FastAPI application serving `settings.models` (every registered model by default)."""
    service = Service(settings or Settings())
    app = FastAPI(title="modelzoo", version=package_version(), docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(Refused)
    async def refused(request, exc):
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):  # 404 for unknown routes, 405 for wrong methods
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        return error(422, f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def fault(request, exc):  # the last guard: logged with its traceback, one line to the client
        logger.exception("%s %s failed", request.method, request.url.path)
        return error(500, f"unexpected {type(exc).__name__} (the server log has the traceback)")

    @app.post("/v1/models/{name}/enhance")
    async def enhance(name: str, request: Request):
        return await enhance_request(service, name, request)

    @app.get("/v1/models")
    async def cards():
        return JSONResponse(json.loads(json.dumps([modelzoo.card(n) for n in service.names], default=str)))

    @app.get("/v1/models/{name}")
    async def card(name: str):
        return JSONResponse(json.loads(json.dumps(service.model(name).card, default=str)))

    @app.get("/v2")
    async def server_metadata():
        return {"name": "modelzoo", "version": package_version(), "extensions": []}

    @app.get("/v2/health/live")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready():
        if service.draining:
            raise Refused(503, "shutting down: finishing the requests in flight")
        return {"ready": True}

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str):
        model = service.model(name)
        return {"name": model.name, "versions": model.variants, "platform": "modelzoo",
                "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}],
                "outputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}]}

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str):
        model = service.model(name)  # servable: sessions open on first use
        if service.draining:
            raise Refused(503, "shutting down: finishing the requests in flight")
        return {"name": model.name, "ready": True, "loaded": model.name in service.sessions.loaded()}

    @app.get("/metrics")
    async def metrics():
        queue = service.queue
        loaded = {name: service.sessions.loaded().count(name) for name in service.names}
        gauges = {("modelzoo_queue_depth", "Requests waiting for an inference worker.", ""): queue.waiting,
                  ("modelzoo_inflight", "Requests admitted (running or waiting).", ""): queue.admitted,
                  ("modelzoo_loaded_models", "Open sessions by model.", "model"): loaded,
                  ("modelzoo_inferences_completed", "Inferences run to the end since the start.", ""): queue.completed}
        return PlainTextResponse(service.metrics.render(gauges), media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def page():
        return HTMLResponse(resources.files("modelzoo.serve").joinpath("page.html").read_text(encoding="utf-8"))

    app.add_middleware(Guard, keys=service.settings.api_keys)
    if service.settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=service.settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["*"])
    app.add_middleware(Measure, metrics=service.metrics)  # outermost: every answer is counted
    return app


async def enhance_request(service, name, request):
    """Check everything that can be checked before reading the body, read it within the limit, then decode,
    infer and encode off the event loop, bounded by the queue and the timeout."""
    model = service.model(name)
    options, params = split_query(request)
    key = session_key(model, options)
    params = check(model, params)
    fmt = options.get("format")
    if fmt is not None and fmt not in imaging.OUTPUT_SUFFIXES:
        raise Refused(422, f"query format: '{fmt}' is not one of {', '.join(sorted(imaging.OUTPUT_SUFFIXES))}")
    quality = parse_quality(options.get("quality", "95"))
    kind = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if not (kind.startswith("image/") or kind in RAW_TYPES):
        raise Refused(415, f"content-type {kind}: send the image file itself as the body (image/* or "
                           "application/octet-stream)")
    if service.draining:
        raise Refused(503, "shutting down: finishing the requests in flight", {"Retry-After": "5"})
    try:  # a slow upload holds a connection, never more than the timeout
        body = await asyncio.wait_for(read_body(request, service.settings.max_bytes), service.settings.timeout)
    except asyncio.TimeoutError:
        raise Refused(408, f"body: not received within {service.settings.timeout:g} s (--timeout)") from None
    try:
        service.queue.admit(service.settings.timeout)
    except Full as exc:
        raise Refused(503, str(exc), {"Retry-After": str(exc.seconds)}) from None
    try:
        try:
            enhancer = await service.sessions.get(key)
        except LoadFailed as exc:
            raise Refused(500, str(exc)) from None
        work = asyncio.ensure_future(run_one(service, enhancer, body, params, fmt, quality))
        gone = asyncio.ensure_future(disconnected(request))
        try:
            done, _ = await asyncio.wait({work, gone}, timeout=service.settings.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if work not in done:
            work.cancel()  # not started yet: dropped from the pool's queue; running: its answer is discarded
            if gone in done:
                service.metrics.dropped += 1
                return Response(status_code=499)  # nobody is listening
            raise Refused(504, f"no answer within {service.settings.timeout:g} s (--timeout)")
        data, photo_format, timings = work.result()
    finally:
        service.queue.release()
    job = enhancer.job
    headers = {"X-Modelzoo-Model": model.name, "X-Modelzoo-Build": job.build, "X-Modelzoo-Backend": job.backend.name,
               "X-Modelzoo-Dtype": str(job.dtype), "X-Modelzoo-Seconds": f"{timings['infer']:.4f}",
               "Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items())}
    return Response(data, media_type=MEDIA_TYPES.get(photo_format, "application/octet-stream"), headers=headers)


async def run_one(service, enhancer, body, params, fmt, quality):
    """Decode, enhance and encode one body: the bytes, their format and the seconds each step took."""
    queue, limit = service.queue, service.settings.max_pixels
    timings = {}
    started = time.perf_counter()
    photo = await queue.codec_call(decode, body, limit)
    timings["decode"] = time.perf_counter() - started
    started = time.perf_counter()
    image = await queue.infer(enhance_photo, enhancer, photo, params)
    timings["infer"] = time.perf_counter() - started
    service.metrics.inferred(enhancer.model.name, timings["infer"])
    started = time.perf_counter()
    photo_format = imaging.output_format(photo, fmt)
    data = await queue.codec_call(encode, image, photo, photo_format, quality)
    timings["encode"] = time.perf_counter() - started
    return data, photo_format, timings


def decode(body, limit):
    try:
        return imaging.decode_photo(body, limit, label="request body")
    except ZooError as exc:
        status = 413 if "above the limit" in str(exc) else 400
        raise Refused(status, str(exc)) from None


def enhance_photo(enhancer, photo, params):
    try:
        return enhancer.photo(photo, **params)
    except ZooError as exc:  # e.g. smaller than the model's minimum size
        raise Refused(422, str(exc)) from None


def encode(image, photo, photo_format, quality):
    return imaging.encode_photo(image, photo, photo_format, quality, label="answer")


def split_query(request):
    """(options, card parameters) from the query; a parameter given twice is refused."""
    seen = {}
    for key, value in request.query_params.multi_items():
        if key in seen:
            raise Refused(422, f"query {key}: given more than once")
        seen[key] = value
    options = {k: seen.pop(k) for k in OPTIONS if k in seen}
    return options, seen


def check(model, settings):
    """The card's post-processing parameters and runtime inputs, checked and converted like `--set` (an
    unknown name lists the allowed ones)."""
    try:
        params, inputs = model.settings(settings, "query")
    except ZooError as exc:
        raise Refused(422, str(exc)) from None
    return {**params, **inputs}


def session_key(model, options):
    """(model, build, backend, variant), each a name the card or the registry knows: never a path."""
    build, backend, variant = (options.get(k) for k in ("build", "backend", "variant"))
    if build is not None and build not in model.builds:
        raise Refused(422, f"query build: {model.name} has no build '{build}' (have: {', '.join(model.builds)})")
    backends = sorted(registry().backends)
    if backend is not None and backend not in backends:
        raise Refused(422, f"query backend: '{backend}' is not available here (have: {', '.join(backends)})")
    if variant is not None and variant not in model.variants:
        raise Refused(422, f"query variant: {model.name} has no variant '{variant}' (have: "
                           f"{', '.join(model.variants)})")
    return model.name, build, backend, variant


def parse_quality(text):
    try:
        quality = int(text)
    except ValueError:
        quality = 0
    if not 1 <= quality <= 100:
        raise Refused(422, f"query quality: '{text}' is not an integer from 1 to 100")
    return quality


async def read_body(request, limit):
    """The body, refused with 413 as soon as it (or its declared length) passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refused(413, f"body: {declared} bytes, above the limit of {limit:,} (--max-bytes)")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"body: more than {limit:,} bytes (--max-bytes)")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(400, "body: the client disconnected before sending all of it") from None
    if not size:
        raise Refused(400, "body: empty; send the image file as the request body")
    return b"".join(chunks)


async def disconnected(request):
    """Returns when the client goes away (the ASGI server's http.disconnect once the body has been read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def package_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelzoo")
    except PackageNotFoundError:
        return "0"


class Guard:
    """API keys (Authorization: Bearer KEY or X-API-Key: KEY), compared in constant time; 401 without one.
    The page and the health probes stay public."""

    def __init__(self, app, keys):
        self.app, self.keys = app, [k.encode() for k in keys]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or scope["path"] in PUBLIC or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key", b"")
        bearer = headers.get(b"authorization", b"")
        if bearer[:7].lower() == b"bearer ":
            given = bearer[7:].strip()
        matched = False
        for key in self.keys:  # every key is compared, so the time says nothing about which one came close
            matched |= hmac.compare_digest(given, key)
        if not matched:
            answer = error(401, "an API key is required: Authorization: Bearer KEY (or X-API-Key: KEY)",
                           {"WWW-Authenticate": "Bearer"})
            return await answer(scope, receive, send)
        return await self.app(scope, receive, send)


class Measure:
    """Counts every answer by method, route template and status, and times it."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.request(scope["method"], path, status[0], time.perf_counter() - started)
