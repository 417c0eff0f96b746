"""The bounded model cache and the bounded work queue of the service.

Sessions are opened on first use through `modelzoo.load` (the fastest accurate build, as `modelzoo run`
chooses, unless the request names one) on a loader thread, and the least recently used beyond `max_models`
is closed. Inference runs on a fixed pool of `workers` threads (each runtime already uses every core for one
image, so one worker is the default); decoding and encoding run on their own pool, so the next request is
decoded while the current one runs, as `modelzoo run` overlaps them.
"""
import asyncio
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import modelzoo
from modelzoo.errors import ZooError

logger = logging.getLogger(__name__)


class Full(Exception):
    """The queue is full: answer 503 with Retry-After `seconds`."""

    def __init__(self, seconds):
        super().__init__(f"the queue is full; retry in {seconds} s")
        self.seconds = seconds


class LoadFailed(Exception):
    """A model could not be opened (missing weights, a failed compile): the server log says why."""


class Sessions:
    """Enhancers by (model, build, backend, variant), at most `max_models` open at once."""

    def __init__(self, max_models):
        self.max_models = max_models
        self.open = OrderedDict()
        self.locks = {}
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelzoo-load")

    def loaded(self):
        return [key[0] for key in self.open]

    async def get(self, key):
        if key in self.open:
            self.open.move_to_end(key)
            return self.open[key]
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:  # one load per key, however many requests wait for it
            if key not in self.open:
                loop = asyncio.get_running_loop()
                self.open[key] = await loop.run_in_executor(self.loader, load, key)
                while len(self.open) > self.max_models:
                    evicted, _ = self.open.popitem(last=False)  # requests running on it keep their reference
                    logger.info("closed %s (--max-models %d)", "/".join(filter(None, evicted)), self.max_models)
        self.open.move_to_end(key)
        return self.open[key]

    def close(self):
        self.loader.shutdown(wait=False, cancel_futures=True)
        self.open.clear()


def load(key):
    name, build, backend, variant = key
    try:
        enhancer = modelzoo.load(name, build=build, backend=backend, variant=variant)
    except ZooError as exc:
        logger.error("%s: cannot be loaded: %s", name, exc)
        raise LoadFailed(f"{name}: could not be loaded (the server log says why)") from None
    logger.info("%s: loaded %s", name, enhancer.job.label)
    return enhancer


class WorkQueue:
    """Admission to the inference pool: at most `workers` running and `queue` waiting, and no more than can
    finish within the timeout; beyond that, Full."""

    def __init__(self, workers, queue, codec_threads=None):
        self.workers, self.queue = workers, queue
        self.admitted = 0
        self.running = 0
        self.completed = 0  # inferences run to the end (dropped or cancelled work never starts)
        self.inference = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelzoo-infer")
        self.codec = ThreadPoolExecutor(max_workers=codec_threads or os.cpu_count() or 2,
                                        thread_name_prefix="modelzoo-codec")
        self.recent = 0.1  # seconds per inference (the first one's, then a moving average): Retry-After, admission
        self.lock = threading.Lock()

    @property
    def waiting(self):
        return max(0, self.admitted - self.running)

    def admit(self, timeout=None):
        """Take a place, or raise Full when every place is taken or when the requests ahead would keep this
        one past `timeout` (at the recent inference time): refused now with 503 rather than 504 later."""
        wait = self.admitted * self.recent / self.workers
        if self.admitted >= self.workers + self.queue or (timeout and wait + self.recent > timeout):
            raise Full(max(1, math.ceil(wait)))
        self.admitted += 1

    def release(self):
        self.admitted -= 1

    async def infer(self, function, *args, **kwargs):
        """Run on the inference pool; cancelling a call that has not started drops it from the pool's queue."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.inference, self._timed, function, args, kwargs)

    def _timed(self, function, args, kwargs):
        with self.lock:
            self.running += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            with self.lock:
                seconds = time.perf_counter() - started
                self.recent = seconds if not self.completed else 0.7 * self.recent + 0.3 * seconds
                self.running -= 1
                self.completed += 1

    async def codec_call(self, function, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.codec, function, *args)

    def close(self):
        self.inference.shutdown(wait=False, cancel_futures=True)
        self.codec.shutdown(wait=False, cancel_futures=True)
