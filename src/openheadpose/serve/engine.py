"""Models loaded once per process, and the bounded pool that runs them.

Inference is CPU-bound, so it runs in a thread pool of ``max_concurrency`` threads (the
models release the GIL while they compute). In front of it sits an admission count:

* at most ``max_concurrency`` inferences run at once (an asyncio semaphore, which the pool's
  size repeats);
* at most ``queue`` more requests wait for a slot; the one after gets **503** with a
  ``Retry-After`` at once, instead of queueing without bound;
* a request that is not answered within ``timeout_s`` (waiting included) gets **504**. Its
  thread cannot be stopped, so its slot stays taken until the thread ends: the count of
  running inferences never exceeds the limit, even after timeouts.

WebSocket streams wait for a slot without the queue's limit: each holds at most one frame
in flight, and the number of streams is itself bounded.

Estimators are cached per option set (:class:`EstimatorCache`). One estimator serves
every thread at once: its stages are stateless between calls (ONNX Runtime sessions are
thread-safe, the LiteRT interpreters hold a lock), and all per-stream state lives in a
:class:`~openheadpose.inference.tracking.HeadTracker` per request or connection.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from openheadpose.serve.config import ServeConfig
from openheadpose.serve.errors import ApiError

T = TypeVar("T")

#: The estimator options a request may set (query parameters), in the builder's names.
OPTION_NAMES = ("model", "detector", "landmarker", "pose", "keypoints", "min_score", "fov", "mirror")


class EstimatorCache:
    """Estimators built by :func:`~openheadpose.inference.builder.build_estimator`, one per option set.

    A request's options replace the server's one by one; naming another model than the
    server's drops the server's weights and its model-specific stages (pose, keypoints,
    landmarker). At most ``size`` estimators are kept (least recently used dropped; one
    still in use lives on until its requests end). Two requests for an estimator not yet
    built wait for one build.
    """

    def __init__(self, config: ServeConfig, size: int | None = None):
        self.config = config
        self.size = size or config.cache_size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}
        self.default_key = self.key({})
        self.error: str | None = None  # why the default estimator could not be built

    def key(self, options: dict[str, Any]) -> tuple:
        """The full option set for a request's options (``None`` values: the server's)."""
        opts = {k: v for k, v in options.items() if v is not None}
        unknown = set(opts) - set(OPTION_NAMES)
        if unknown:
            raise ValueError(f"unknown estimator options {sorted(unknown)}")
        base = self.config.estimator_options()
        weights = self.config.weights
        if "model" in opts and opts["model"] != base["model"]:
            base.update(pose=None, keypoints=None, landmarker=None)
            weights = None
        base.update(opts)
        return (*(base[k] for k in OPTION_NAMES), weights)

    def put(self, key: tuple, estimator) -> None:
        """Keep an estimator built elsewhere (the CLI builds the default one to check its options)."""
        with self._lock:
            self._items[key] = estimator
            self._trim()

    def ready(self, key: tuple | None = None) -> bool:
        with self._lock:
            return (self.default_key if key is None else key) in self._items

    def get(self, key: tuple):
        """The estimator for ``key``, built on first use (call from a worker thread: building takes a while).

        Raises:
            ApiError: 422 ``unsupported_option`` naming what the builder refused (an unknown
                name, with its close matches, or an option the model cannot use); 500
                ``model_error`` when a model file cannot be loaded.
        """
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                est = self._build(key)
            finally:  # refused option sets leave nothing behind (their number is the client's choice)
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self._items[key] = est
                self._trim()
            return est

    def _trim(self) -> None:
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def _build(self, key: tuple):
        from openheadpose.inference.builder import build_estimator

        opts = dict(zip(OPTION_NAMES, key[:-1]))
        model, weights = opts.pop("model"), key[-1]
        try:
            return build_estimator(model, weights, track=False, **opts)
        except (KeyError, ValueError) as exc:
            msg = str(exc.args[0]) if exc.args else str(exc)
            raise ApiError(422, "unsupported_option", msg) from None
        except (RuntimeError, OSError) as exc:
            raise ApiError(500, "model_error", f"could not load the models for {dict(zip(OPTION_NAMES, key[:-1]))}: {exc}") from None


class Engine:
    """The inference pool and its admission rules (see the module docstring).

    Create it inside the running event loop (the app's lifespan): its semaphore belongs to it.
    """

    def __init__(self, config: ServeConfig, estimators: EstimatorCache):
        self.config = config
        self.estimators = estimators
        self.pool = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="headpose-infer")
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self.admitted = 0  # HTTP requests waiting or running (running ones include timed-out threads)
        self.running = 0
        self.served = 0
        self.rejected = 0
        self.timed_out = 0
        self._mean_s = 0.1  # running mean of an inference's seconds (for Retry-After)

    @property
    def capacity(self) -> int:
        return self.config.max_concurrency + self.config.queue

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the waiting requests' work spread over the slots."""
        waiting = max(0, self.admitted - self.config.max_concurrency)
        return int(min(60, max(1, math.ceil((waiting + 1) * self._mean_s / self.config.max_concurrency))))

    async def run(self, fn: Callable[[], T], *, admit: bool = True, timeout_s: float | None | Literal["config"] = "config") -> T:
        """Run ``fn`` on the pool once a slot is free.

        Args:
            fn: the work (decoding, inference); may raise :class:`ApiError`.
            admit: count against the wait queue (HTTP requests); ``False`` for streams.
            timeout_s: seconds before 504: the config's, or ``None`` for none.

        Raises:
            ApiError: 503 ``busy`` when the queue is full; 504 ``timeout``.
        """
        timeout_s = self.config.timeout_s if timeout_s == "config" else timeout_s
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        if admit:
            if self.admitted >= self.capacity:
                self.rejected += 1
                raise ApiError(503, "busy", f"the server is busy ({self.config.max_concurrency} inferences running, {self.config.queue} waiting); retry later",
                               {"Retry-After": str(self.retry_after())})  # fmt: skip
            self.admitted += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout_s)
        except BaseException as exc:  # timed out waiting, or the client went away
            if admit:
                self.admitted -= 1
            if isinstance(exc, asyncio.TimeoutError):
                self.timed_out += 1
                raise ApiError(504, "timeout", f"no inference slot within {timeout_s:g} s; the server is overloaded, retry later") from None
            raise
        self.running += 1
        t0 = time.perf_counter()

        def release(_):  # when the thread ends, also after a timeout: the slot stays taken until then
            self.running -= 1
            self._mean_s = 0.9 * self._mean_s + 0.1 * (time.perf_counter() - t0)
            self._slots.release()
            if admit:
                self.admitted -= 1

        fut = loop.run_in_executor(self.pool, fn)
        fut.add_done_callback(release)
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), None if deadline is None else max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            self.timed_out += 1
            raise ApiError(504, "timeout", f"not answered within {timeout_s:g} s") from None
        self.served += 1
        return result

    def stats(self) -> dict[str, int]:
        return {"running": self.running, "waiting": max(0, self.admitted - self.running), "served": self.served,
                "rejected": self.rejected, "timed_out": self.timed_out}  # fmt: skip

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
