"""The real server on a free loopback port: the page driven in Debian's headless chromium over the DevTools
protocol (upload a built-in sample, wait for the result, move the slider, download), then SIGTERM while an
upload is half sent: that request still gets its image, new connections are refused, the process ends cleanly.
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("fastapi", reason='the serve extra is not installed (pip install -e ".[serve]")')
websockets = pytest.importorskip("websockets", reason="websockets drives chromium (the test extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url, data=None, timeout=60):
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=timeout) as answer:
        return answer.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "modelzoo", "serve", "--port", str(port), "--model", "sci",
                                    "--model", "pairlie", "--drain", "20"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            fetch(url + "v2/health/ready", timeout=2)
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    yield url, process, log
    if process.poll() is None:
        process.kill()
        process.wait()


class Page:
    """The DevTools protocol over the page target's websocket: just what this test needs."""

    def __init__(self, socket_):
        self.socket, self.counter = socket_, 0

    async def call(self, method, **params):
        self.counter += 1
        await self.socket.send(json.dumps({"id": self.counter, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == self.counter:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]

    async def value(self, expression):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def until(self, expression, timeout=90):
        deadline = time.monotonic() + timeout
        while not await self.value(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}: " + str(
                await self.value("document.getElementById('status').textContent"))
            await asyncio.sleep(0.1)


async def drive(page, url, sample, downloads):
    await page.call("Page.enable")
    await page.call("Page.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    await page.call("Page.navigate", url=url)
    await page.until("document.body && document.body.dataset.ready === '1'")
    await page.value("(m => { m.value = 'pairlie'; m.dispatchEvent(new Event('change')); })"
                     "(document.getElementById('model'))")
    assert await page.value("document.querySelector('[data-param][name=gamma]').value") == "0.2"
    await page.value("(m => { m.value = 'sci'; m.dispatchEvent(new Event('change')); })"
                     "(document.getElementById('model'))")
    assert "MIT" in await page.value("document.getElementById('about').textContent")
    document = await page.call("DOM.getDocument")
    node = await page.call("DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#file")
    await page.call("DOM.setFileInputFiles", files=[str(sample)], nodeId=node["nodeId"])
    await page.until("document.body.dataset.state === 'done'")
    assert "fp32 on onnxruntime" in await page.value("document.getElementById('status').textContent")
    box = await page.value("(r => [r.left, r.top, r.width, r.height])"
                           "(document.getElementById('slider').getBoundingClientRect())")
    y = box[1] + box[3] / 2
    for kind, x in (("mousePressed", box[0] + box[2] / 2), ("mouseMoved", box[0] + box[2] * 0.4),
                    ("mouseMoved", box[0] + box[2] * 0.2), ("mouseReleased", box[0] + box[2] * 0.2)):
        await page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1,
                        buttons=1 if kind != "mouseReleased" else 0)
    moved = int(await page.value("document.body.dataset.slider"))
    assert 15 <= moved <= 25, f"the slider did not follow the mouse: {moved}"
    assert await page.value("document.getElementById('after').style.clipPath") == f"inset(0px {100 - moved}% 0px 0px)"
    name = await page.value("document.getElementById('download').download")
    await page.value("document.getElementById('download').click()")
    deadline = time.monotonic() + 30
    while not (downloads / name).is_file():
        assert time.monotonic() < deadline, f"no download: {list(downloads.iterdir())}"
        await asyncio.sleep(0.1)
    return downloads / name


async def with_chromium(url, sample, downloads, profile):
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update", "--remote-debugging-port=0",
               f"--user-data-dir={profile}", "--window-size=1200,1600", "about:blank"]
    browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HOME": str(profile)})
    try:
        for line in browser.stderr:
            if "DevTools listening on " in line:
                port = line.split("ws://127.0.0.1:")[1].split("/")[0]
                break
        else:
            pytest.fail("chromium did not open its DevTools port")
        targets = json.loads(fetch(f"http://127.0.0.1:{port}/json/list"))
        target = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as socket_:
            return await drive(Page(socket_), url, sample, downloads)
    finally:
        browser.kill()
        browser.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_page_enhances_a_sample_in_chromium(server, tmp_path):
    from modelzoo import samples

    url, _, _ = server
    sample = samples.folder() / "low" / "chelsea.png"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    saved = asyncio.run(with_chromium(url, sample, downloads, tmp_path / "profile"))
    assert saved.name == "chelsea-sci.png"
    assert saved.read_bytes() == fetch(url + "v1/models/sci/enhance", sample.read_bytes())


def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(server):
    from modelzoo import samples

    url, process, log = server
    port = int(url.rsplit(":", 1)[1].strip("/"))
    body = (samples.folder() / "low" / "chelsea.png").read_bytes()
    expected = fetch(url + "v1/models/sci/enhance", body)
    upload = socket.create_connection(("127.0.0.1", port), timeout=30)
    upload.sendall(f"POST /v1/models/sci/enhance HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:1000])
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    with pytest.raises(OSError):
        fetch(url + "v2/health/live", timeout=2)  # not listening any more
    upload.sendall(body[1000:])
    answer = b""
    while chunk := upload.recv(65536):
        answer += chunk
    upload.close()
    head, _, image = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert image == expected
    # uvicorn re-raises the signal once drained: the status a process ended by SIGTERM has (systemd: clean)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
