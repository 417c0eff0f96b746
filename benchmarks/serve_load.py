"""Load and fault runs against `modelzoo serve` on loopback; prints one JSON summary (docs/serving.md).

    python benchmarks/serve_load.py --models zero-dce-pp pairlie --requests 2000 --concurrency 1 4 16

For each model: a server on a free 127.0.0.1 port (the default build, as `modelzoo run` chooses), then
`--requests` POSTs of 600x400 PNGs at each concurrency (bounded by --max-seconds per level): throughput,
p50/p99 latency, answers by status, server RSS before and after; every 200 is compared byte for byte with
what `modelzoo run` writes for the same input and build. `modelzoo run`'s own images/s on a folder of the
same inputs is the baseline for throughput at concurrency 4. The fault run sends --faults hostile requests
(truncated and slow uploads, decompression bombs, 1x1 and 100 MP images, bad parameters, wrong methods and
types) interleaved with as many normal ones, 8 at a time: the normal ones must all succeed.
The client is plain http.client on threads, kept light because it shares the CPU with the server.
"""
import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

HOST = "127.0.0.1"


def inputs(count=8):
    """`count` distinct 600x400 PNGs made from the built-in low-light samples (crops and flips)."""
    from modelzoo import imaging, samples

    root = samples.folder() / "low"
    sources = [imaging.read_rgb(path) for path in sorted(root.glob("*.png"))]
    images = []
    for index in range(count):
        picture = sources[index % len(sources)]
        picture = imaging.resize(picture, max(600, picture.shape[1]), max(400, picture.shape[0]))
        top, left = (index * 37) % (picture.shape[0] - 399), (index * 53) % (picture.shape[1] - 599)
        crop = picture[top:top + 400, left:left + 600]
        images.append(np.ascontiguousarray(crop[:, ::-1] if index % 2 else crop))
    return [png(image) for image in images]


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def request(port, method, path, body=None, headers=None, timeout=120):
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read(), {k.lower(): v for k, v in answer.getheaders()}
    finally:
        connection.close()


class Server:
    def __init__(self, model, extra, log):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "modelzoo", "serve", "--port", str(self.port),
                                         "--model", model, *extra], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                if request(self.port, "GET", "/v2/health/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.3)

    def alive(self):
        try:
            return request(self.port, "GET", "/v2/health/live", timeout=10)[0] == 200
        except OSError:
            return False

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def run_reference(model, build, backend, bodies, folder, copies):
    """What `modelzoo run` writes for each input with this build, and its images/s on a folder of them."""
    source = folder / "in"
    source.mkdir(parents=True)
    for copy in range(copies):
        for index, body in enumerate(bodies):
            (source / f"{copy:03d}-{index}.png").write_bytes(body)
    command = [sys.executable, "-m", "modelzoo", "run", model, "--input", str(source), "--output", str(folder / "out"),
               "--build", build, "--backend", backend, "--json", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    expected = [(folder / "out" / f"000-{index}.png").read_bytes() for index in range(len(bodies))]
    return expected, {"images": len(report["images"]), "seconds": report["seconds"],
                      "images_per_s": round(len(report["images"]) / report["seconds"], 2)}


def load_level(port, path, bodies, expected, count, concurrency, max_seconds):
    """`count` POSTs, `concurrency` at a time on persistent connections, within `max_seconds`."""
    lock, issued = threading.Lock(), [0]
    latencies, statuses, wrong = [], Counter(), [0]
    deadline = time.monotonic() + max_seconds

    def worker():
        connection = http.client.HTTPConnection(HOST, port, timeout=300)
        while True:
            with lock:
                if issued[0] >= count or time.monotonic() > deadline:
                    break
                index = issued[0]
                issued[0] += 1
            body = bodies[index % len(bodies)]
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "image/png"})
                answer = connection.getresponse()
                data, status = answer.read(), answer.status
            except (OSError, http.client.HTTPException) as exc:
                status, data = f"error {type(exc).__name__}", b""
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=300)
            seconds = time.perf_counter() - started
            with lock:
                statuses[str(status)] += 1
                if status == 200:
                    latencies.append(seconds)
                    wrong[0] += data != expected[index % len(bodies)]
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ok = sorted(latencies)
    return {"concurrency": concurrency, "requests": sum(statuses.values()), "seconds": round(wall, 2),
            "throughput_per_s": round(len(ok) / wall, 2), "by_status": dict(statuses), "wrong_bytes": wrong[0],
            "p50_ms": round(1000 * ok[len(ok) // 2], 1) if ok else None,
            "p99_ms": round(1000 * ok[min(len(ok) - 1, int(len(ok) * 0.99))], 1) if ok else None}


def bomb():
    header = (100000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def chunk(kind, data):
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def raw(port, head, parts, pause=0.0, hang_up=False):
    """Send a request by hand (truncated or slow uploads); the status line's code, or 'closed'."""
    with socket.create_connection((HOST, port), timeout=120) as connection:
        connection.sendall(head)
        for part in parts:
            connection.sendall(part)
            time.sleep(pause)
        if hang_up:  # the rest of the body never comes
            connection.shutdown(socket.SHUT_WR)
        answer = connection.recv(64)
    return answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "closed"


def hostile(port, path, index, good, huge):
    """One hostile request of kind `index % 12`; returns (kind, status)."""
    kinds = ["truncated upload", "slow upload", "decompression bomb", "1x1 image", "100 MP image",
             "misspelt parameter", "parameter out of range", "build as a path", "GET on enhance",
             "wrong content type", "garbage body", "empty body"]
    kind = kinds[index % len(kinds)]
    base = path.split("?")[0]
    head = lambda length: (f"POST {base} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"  # noqa: E731
                           f"Content-Length: {length}\r\n\r\n").encode()
    if kind == "truncated upload":
        return kind, raw(port, head(len(good)), [good[: len(good) // 3]], hang_up=True)
    if kind == "slow upload":  # 8 pieces over ~1.6 s: complete in the end, so it is answered
        pieces = [good[i:i + len(good) // 8 + 1] for i in range(0, len(good), len(good) // 8 + 1)]
        return kind, raw(port, head(len(good)), pieces, pause=0.2)
    calls = {"decompression bomb": ("POST", base, bomb(), {}),
             "1x1 image": ("POST", base, png(np.zeros((1, 1, 3), np.uint8)), {}),
             "100 MP image": ("POST", base, huge, {}),
             "misspelt parameter": ("POST", base + "?gama=0.1", good, {}),
             "parameter out of range": ("POST", base + "?quality=1000", good, {}),
             "build as a path": ("POST", base + "?build=../../etc/passwd", good, {}),
             "GET on enhance": ("GET", base, None, {}),
             "wrong content type": ("POST", base, b'{"image": 1}', {"Content-Type": "application/json"}),
             "garbage body": ("POST", base, os.urandom(5000), {}),
             "empty body": ("POST", base, b"", {})}
    method, target, body, headers = calls[kind]
    try:
        return kind, str(request(port, method, target, body, headers)[0])
    except OSError as exc:
        return kind, f"error {type(exc).__name__}"


def fault_run(port, path, bodies, expected, count):
    """`count` hostile requests interleaved with `count` normal ones, 8 at a time."""
    huge = png(np.zeros((10000, 10000, 3), np.uint8))  # 100 MP, a 300 KB file
    hostile_results, normal = Counter(), Counter()

    def one(index):
        if index % 2:
            kind, status = hostile(port, path, index // 2, bodies[0], huge)
            return "hostile", f"{kind}: {status}"
        status, data, _ = request(port, "POST", path, bodies[index % len(bodies)], {"Content-Type": "image/png"})
        return "normal", "200 equal" if status == 200 and data == expected[index % len(bodies)] else f"{status}"

    with ThreadPoolExecutor(8) as pool:
        for group, outcome in pool.map(one, range(2 * count)):
            (hostile_results if group == "hostile" else normal)[outcome] += 1
    return {"hostile": dict(sorted(hostile_results.items())), "normal": dict(normal)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["zero-dce-pp", "pairlie"])
    parser.add_argument("--requests", type=int, default=2000, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-seconds", type=float, default=600, help="per concurrency level")
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--run-copies", type=int, default=5, help="the `modelzoo run` folder: 8 inputs x this")
    parser.add_argument("--serve-args", default="--max-pixels 16000000 --timeout 120",
                        help="extra `modelzoo serve` options")
    args = parser.parse_args()
    bodies = inputs()
    summary = {"cpu_count": os.cpu_count(), "inputs": "8 distinct 600x400 PNGs", "serve_args": args.serve_args,
               "models": {}}
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    for model in args.models:
        with open(work / f"{model}.log", "wb") as log:
            server = Server(model, args.serve_args.split(), log)
            path = f"/v1/models/{model}/enhance"
            status, _, headers = request(server.port, "POST", path, bodies[0], {"Content-Type": "image/png"},
                                         timeout=1800)  # the first use may time and compile the builds
            assert status == 200, f"warm-up answered {status}"
            build, backend = headers["x-modelzoo-build"], headers["x-modelzoo-backend"]
            expected, run_speed = run_reference(model, build, backend, bodies, work / model, args.run_copies)
            result = {"build": build, "backend": backend, "modelzoo_run": run_speed,
                      "rss_mb_before": rss_mb(server.process.pid), "levels": []}
            for concurrency in args.concurrency:
                level = load_level(server.port, path, bodies, expected, args.requests, concurrency, args.max_seconds)
                result["levels"].append(level)
                print(json.dumps({model: level}), file=sys.stderr, flush=True)
            result["rss_mb_after_load"] = rss_mb(server.process.pid)
            four = next((lv for lv in result["levels"] if lv["concurrency"] == 4), None)
            if four:
                result["c4_vs_run"] = round(four["throughput_per_s"] / run_speed["images_per_s"], 3)
            if args.faults:
                result["faults"] = fault_run(server.port, path, bodies, expected, args.faults)
                result["alive_after_faults"] = server.alive()
                result["rss_mb_after_faults"] = rss_mb(server.process.pid)
            server.stop()
        summary["models"][model] = result
        print(json.dumps({model: result}), file=sys.stderr, flush=True)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
