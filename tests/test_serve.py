"""`modelzoo serve` in-process (a test client): the answer is the bytes `modelzoo run` writes, bad input is a
one-line 4xx, the queue and the timeout hold, keys and CORS are off unless asked. The page in a real browser
is tests/test_serve_page.py. Images are made here; the small model `sci` keeps it fast.
"""
import asyncio
import io
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from modelzoo import imaging
from test_photos import camera_exif, scene, srgb_icc

pytest.importorskip("fastapi", reason='the serve extra is not installed (pip install -e ".[serve]")')
from fastapi.testclient import TestClient  # noqa: E402
from starlette.requests import Request  # noqa: E402

from modelzoo.serve.app import Settings, create_app, enhance_request  # noqa: E402

ENHANCE = "/v1/models/sci/enhance"


def encoded(pixels, fmt="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(models=["sci", "pairlie", "zero-dce"], max_bytes=200_000))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def png():
    return encoded(scene(40, 56))


def test_the_answer_is_the_bytes_run_writes_with_exif_and_icc(client, cli, tmp_path):
    photo = tmp_path / "in" / "dark.jpg"
    photo.parent.mkdir()
    icc = srgb_icc()
    photo.write_bytes(encoded(scene(48, 64), "JPEG", quality=90, exif=camera_exif(6), icc_profile=icc))
    answer = client.post(ENHANCE, content=photo.read_bytes(), headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    assert (answer.headers["x-modelzoo-build"], answer.headers["x-modelzoo-backend"]) == ("fp32", "onnxruntime")
    assert float(answer.headers["x-modelzoo-seconds"]) > 0 and "infer;dur=" in answer.headers["server-timing"]
    result = cli("run", "sci", "--input", photo.parent, "--output", tmp_path / "out", "--build", "fp32",
                 "--backend", "onnxruntime", "--quiet")
    assert result.exit_code == 0, result.output
    assert answer.content == (tmp_path / "out" / "dark.jpg").read_bytes()
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.size == (48, 64)  # EXIF orientation 6 applied: the pixels are upright
        assert image.getexif()[0x010F] == "TestCam" and image.getexif()[0x0112] == 1
        assert image.info["icc_profile"] == icc


def test_format_and_quality_are_query_parameters(client, png):
    answer = client.post(f"{ENHANCE}?format=jpg&quality=80", content=png)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.content[:3] == b"\xff\xd8\xff"
    tiny = client.post(ENHANCE, content=encoded(np.zeros((1, 1, 3), np.uint8)))  # sci's minimum size is 1
    assert tiny.status_code == 200 and Image.open(io.BytesIO(tiny.content)).size == (1, 1)
    png_answer = client.post(ENHANCE, content=png)
    assert png_answer.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(png_answer.content)) as image:
        assert image.size == (56, 40)


def bomb():
    """A valid PNG that declares 100000x100000 pixels in 57 bytes: refused from its header, never decoded."""
    header = (100000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + imaging.png_chunk(b"IHDR", header) + imaging.png_chunk(b"IDAT", zlib.compress(b""))
            + imaging.png_chunk(b"IEND", b""))


@pytest.mark.parametrize("method, path, body, headers, status, says", [
    ("POST", "/v1/models/pairlie/enhance?gama=0.1", "png", {}, 422, "(allowed: gamma)"),
    ("POST", "/v1/models/pairlie/enhance?gamma=abc", "png", {}, 422, "gamma"),
    ("POST", "/v1/models/nope/enhance", "png", {}, 404, "model 'nope'"),
    ("POST", f"{ENHANCE}?build=../../../etc/passwd", "png", {}, 422, "no build"),
    ("POST", f"{ENHANCE}?backend=tvm_vacc", "png", {}, 422, "backend"),
    ("POST", f"{ENHANCE}?variant=/tmp/x.pt", "png", {}, 422, "variant"),
    ("POST", f"{ENHANCE}?format=gif", "png", {}, 422, "format"),
    ("POST", f"{ENHANCE}?quality=0", "png", {}, 422, "quality"),
    ("POST", f"{ENHANCE}?format=png&format=jpg", "png", {}, 422, "more than once"),
    ("POST", ENHANCE, "png", {"content-type": "multipart/form-data; boundary=x"}, 415, "content-type"),
    ("POST", ENHANCE, b"", {}, 400, "empty"),
    ("POST", ENHANCE, b"this is not an image", {}, 400, "not an image"),
    ("POST", ENHANCE, "truncated", {}, 400, "request body"),
    ("POST", ENHANCE, "bomb", {}, 413, "above the limit"),
    ("POST", ENHANCE, "large", {}, 413, "--max-bytes"),
    ("GET", ENHANCE, None, {}, 405, "Method Not Allowed"),
    ("DELETE", "/v1/models/sci", None, {}, 405, "Method Not Allowed"),
    ("GET", "/etc/passwd", None, {}, 404, "Not Found"),
])
def test_bad_requests_get_a_one_line_json_error(client, png, method, path, body, headers, status, says):
    bodies = {"png": png, "truncated": png[: len(png) // 2], "bomb": bomb(),
              "large": np.random.default_rng(0).bytes(300_000), }
    answer = client.request(method, path, content=bodies.get(body, body) if isinstance(body, str) else body,
                            headers=headers)
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]
    assert says in message and "\n" not in message and "Traceback" not in message
    assert "/work" not in message and "site-packages" not in message  # nothing about the server's files


def test_cards_health_metadata_and_metrics(client, png):
    assert [card["name"] for card in client.get("/v1/models").json()] == ["pairlie", "sci", "zero-dce"]
    assert client.get("/v1/models/sci").json()["license"]["id"] == "MIT"
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/sci").json()["versions"] == ["medium", "easy", "difficult"]
    assert client.get("/v2/models/sci/ready").json()["ready"] is True
    assert client.post(ENHANCE, content=png).status_code == 200
    text = client.get("/metrics").text
    assert 'modelzoo_requests_total{method="POST",route="/v1/models/{name}/enhance",status="200"}' in text
    assert 'modelzoo_request_seconds_bucket{route="/v1/models/{name}/enhance",le="+Inf"}' in text
    assert "modelzoo_queue_depth 0" in text and 'modelzoo_loaded_models{model="sci"} 1' in text
    assert "<!doctype html>" in client.get("/").text


def blocked(service):
    """Occupy the single inference worker until the returned event is set."""
    release = threading.Event()
    service.queue.inference.submit(release.wait, 30)
    return release


def test_a_full_queue_answers_503_with_retry_after_and_never_queues_more():
    """Full: every place taken, or the requests ahead would keep this one past the timeout."""
    with TestClient(create_app(Settings(models=["sci"], queue=1, timeout=30))) as test_client:
        service = test_client.app.state.service
        png = encoded(scene(40, 56))
        assert test_client.post(ENHANCE, content=png).status_code == 200  # loaded
        service.queue.admit(), service.queue.admit()  # one running, one waiting: full
        answer = test_client.post(ENHANCE, content=png)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
        assert "queue is full" in answer.json()["error"]
        service.queue.release(), service.queue.release()
        assert test_client.post(ENHANCE, content=png).status_code == 200
        service.queue.admit()  # one running, a place free, but at 20 s per image it would end past --timeout 30
        service.queue.recent = 20.0
        answer = test_client.post(ENHANCE, content=png)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) == 20


def test_a_request_past_its_timeout_is_504_and_its_work_is_dropped():
    with TestClient(create_app(Settings(models=["sci"], timeout=0.5))) as test_client:
        service = test_client.app.state.service
        png = encoded(scene(40, 56))
        assert test_client.post(ENHANCE, content=png).status_code == 200
        completed = service.queue.completed
        release = blocked(service)
        answer = test_client.post(ENHANCE, content=png)
        assert answer.status_code == 504 and "--timeout" in answer.json()["error"]
        release.set()
        service.queue.inference.submit(lambda: None).result(timeout=30)
        assert service.queue.completed == completed, "the timed-out request still ran"
        assert test_client.post(ENHANCE, content=png).status_code == 200


def test_a_client_that_disconnects_has_its_queued_work_dropped():
    app = create_app(Settings(models=["sci"]))
    service = app.state.service
    body = encoded(scene(40, 56))

    async def scenario():
        await service.sessions.get(("sci", None, None, None))
        messages = [{"type": "http.request", "body": body, "more_body": False}, {"type": "http.disconnect"}]

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        scope = {"type": "http", "method": "POST", "path": ENHANCE, "query_string": b"", "headers": []}
        return await enhance_request(service, "sci", Request(scope, receive))

    release = blocked(service)
    try:
        answer = asyncio.run(scenario())
    finally:
        release.set()
    service.queue.inference.submit(lambda: None).result(timeout=30)
    assert answer.status_code == 499 and service.metrics.dropped == 1
    assert service.queue.completed == 0 and service.queue.admitted == 0
    service.close()


def test_api_keys_and_cors(tmp_path, png):
    with TestClient(create_app(Settings(models=["sci"], api_keys=["s3cret", "other"]))) as keyed:
        assert keyed.get("/v1/models").status_code == 401
        assert keyed.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert keyed.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert keyed.get("/v1/models", headers={"X-API-Key": "other"}).status_code == 200
        assert keyed.get("/v2/health/ready").status_code == 200 and keyed.get("/").status_code == 200
    origin = {"Origin": "https://photos.example"}
    with TestClient(create_app(Settings(models=["sci"]))) as plain:
        assert "access-control-allow-origin" not in plain.get("/v1/models", headers=origin).headers
    with TestClient(create_app(Settings(models=["sci"], cors_origins=["https://photos.example"]))) as shared:
        allowed = shared.get("/v1/models", headers=origin).headers
        assert allowed["access-control-allow-origin"] == "https://photos.example"


def test_serving_beyond_loopback_needs_keys_or_insecure(cli, tmp_path):
    result = cli("serve", "--host", "0.0.0.0")
    assert result.exit_code == 2 and "--api-key-file" in result.output
    empty = tmp_path / "keys"
    empty.write_text("\n")
    result = cli("serve", "--host", "0.0.0.0", "--api-key-file", empty)
    assert result.exit_code == 1 and "no API keys" in result.output
    result = cli("serve", "--model", "nope")
    assert result.exit_code == 1 and "nope" in result.output


def test_runtime_inputs_are_query_parameters_as_load_takes_them(tmp_path_factory):
    """A card's runtime input (URetinex-Net's `ratio`, here a toy's) is set per request like load(ratio=3)."""
    import modelzoo
    from toys import FP32, Gain, ToyModel, registered, save_weights, weights_for, write_card

    ratio = {"type": "number", "minimum": 1, "maximum": 20, "default": 5, "description": "illumination ratio"}
    card = write_card(tmp_path_factory.mktemp("toy-serve") / "model", "toy-serve", builds={"fp32": FP32},
                      weights={"official": save_weights("toy-serve", "gain.pth", weights_for(Gain))},
                      runtime_inputs={"ratio": ratio})
    pixels = np.random.default_rng(1).integers(0, 100, (40, 50, 3), dtype=np.uint8)
    with registered(ToyModel(card)), TestClient(create_app(Settings(models=["toy-serve"]))) as test_client:
        answers = {value: test_client.post(f"/v1/models/toy-serve/enhance?ratio={value}", content=encoded(pixels))
                   for value in ("3", "7")}
        for value, answer in answers.items():
            assert answer.status_code == 200, answer.text
            expected = modelzoo.load("toy-serve", build="fp32", ratio=float(value))(pixels)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(answer.content))), expected)
        assert answers["3"].content != answers["7"].content
        refused = test_client.post("/v1/models/toy-serve/enhance?ratio=50", content=encoded(pixels))
        assert refused.status_code == 422 and "ratio" in refused.json()["error"]
