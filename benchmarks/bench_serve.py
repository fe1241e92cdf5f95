"""Service benchmark: ``headpose serve`` on loopback against the in-process pipeline, in one run.

A benchmark, not a test: it asserts nothing; every figure was measured in this run, on
this machine, with the server and its clients sharing the same cores.

(1) in process: the work one request costs the server (decode the JPEG with the service's
    checks, one tracker step: what ``POST /v1/predict`` runs), serially and on
    ``--max-concurrency`` threads: images/s and latency;
(2) ``headpose serve`` in a child process (``--port 0``, loopback only): ``POST /v1/predict``
    from 1, 4 and 16 concurrent clients (keep-alive connections, each sends its next request
    when the last is answered) for ``--seconds`` each: requests/s, p50/p99 latency, every
    status counted -- below the queue limit (max concurrency + queue) every answer must be
    200; the ratio to (1);
(3) overload: more clients than the server admits: only 200 and 503 (with ``Retry-After``)
    may come back, no error and no timeout;
(4) ``WebSocket /v1/stream`` with 1 and 4 streams, each sending its next frame when the last is
    answered (as the page does): frames/s answered, round-trip latency; and one stream flooded
    at 30 frames/s regardless: what the server answers and what it drops (and counts);
(5) memory: ``--memory-requests`` requests (default 10,000; every 20th a truncated JPEG that
    must get 400) on a small face crop from 16 clients; the server's resident memory
    (``/proc/PID/status`` VmRSS) sampled every 10 % -- growth from 10 % to 100 %.

Images: scikit-image's astronaut (512x512 JPEG) for (1)-(3); for (4) 640x480 frames of it sliding
across the picture (the browser test's fake webcam); for (5) a 192x192 crop of its face.

Usage:
    python benchmarks/bench_serve.py                 # about 10 minutes on 2 busy cores
    python benchmarks/bench_serve.py --quick         # a smoke run (~1 minute): 3 s per load, 500 memory requests;
                                                     # writes /tmp/openheadpose-bench-serve-quick.json
    python benchmarks/bench_serve.py --seconds 20 --max-concurrency 4 --queue 64

Numbers go to a table on stdout and to ``--out`` (default ``benchmarks/results/serve.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package

from benchmarks.common import run_header, write_result


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _stats(lat_s: list[float], seconds: float) -> dict[str, Any]:
    a = np.asarray(lat_s) * 1000
    return {
        "count": len(lat_s),
        "seconds": round(seconds, 3),
        "per_s": round(len(lat_s) / seconds, 2) if seconds > 0 else None,
        "p50_ms": round(float(np.percentile(a, 50)), 2) if len(a) else None,
        "p99_ms": round(float(np.percentile(a, 99)), 2) if len(a) else None,
    }


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# --------------------------------------------------------------------------- (1) in process
def in_process(data: bytes, seconds: float, threads: int) -> dict[str, Any]:
    from openheadpose.inference.builder import build_estimator
    from openheadpose.serve.app import _frame_result
    from openheadpose.serve.images import decode_image

    est = build_estimator(track=False)

    def one() -> float:
        t = time.perf_counter()
        _frame_result(est, decode_image(data, "bench", 40_000_000), "bench", 0, True, True)
        return time.perf_counter() - t

    for _ in range(3):
        one()  # warm-up

    def loop(deadline: float) -> list[float]:
        out = []
        while time.perf_counter() < deadline:
            out.append(one())
        return out

    t0 = time.perf_counter()
    serial = loop(t0 + seconds)
    serial_stats = _stats(serial, time.perf_counter() - t0)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(loop, [t0 + seconds] * threads))
    lat = [x for p in parts for x in p]
    return {"serial": serial_stats, "threads": threads, "threaded": _stats(lat, time.perf_counter() - t0)}


# --------------------------------------------------------------------------- the server
class Server:
    """``headpose serve --port 0`` in a child process; its port from its log."""

    def __init__(self, max_concurrency: int, queue: int):
        self.cmd = [sys.executable, "-m", "openheadpose.cli", "serve", "--port", "0", "--max-concurrency", str(max_concurrency),
                    "--queue", str(queue), "--no-access-log", "--timeout", "60"]  # fmt: skip
        self.lines: list[str] = []

    def __enter__(self) -> Server:
        # --no-access-log: a line per request would be read by this process, on the cores being measured
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")), daemon=True).start()
        deadline = time.monotonic() + 120
        while True:
            for line in list(self.lines):
                m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.url = f"http://127.0.0.1:{m.group(1)}"
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("headpose serve did not start:\n" + "".join(self.lines))
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------------- (2), (3), (5) HTTP
async def http_load(url: str, bodies: list[bytes], clients: int, seconds: float | None = None, total: int | None = None,
                    sample=None) -> dict[str, Any]:  # fmt: skip
    """``clients`` closed-loop clients posting ``bodies`` in turn, for ``seconds`` or ``total`` requests."""
    import httpx

    statuses: Counter = Counter()
    lat: dict[int, list[float]] = {}
    retry_after: set[str] = set()
    errors: Counter = Counter()
    sent = 0
    t0 = time.perf_counter()
    deadline = None if seconds is None else t0 + seconds

    async def client(c: httpx.AsyncClient):
        nonlocal sent
        while (deadline is None or time.perf_counter() < deadline) and (total is None or sent < total):
            i = sent
            sent += 1
            t = time.perf_counter()
            try:
                r = await c.post(f"{url}/v1/predict", content=bodies[i % len(bodies)], headers={"content-type": "image/jpeg"})
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            statuses[r.status_code] += 1
            lat.setdefault(r.status_code, []).append(time.perf_counter() - t)
            if r.status_code == 503:
                retry_after.add(r.headers.get("retry-after", "missing"))
            if sample is not None:
                sample(sent)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    ok = _stats(lat.get(200, []), elapsed)
    return {
        "clients": clients,
        "requests": sum(statuses.values()) + sum(errors.values()),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "transport_errors": dict(errors),
        "requests_per_s": ok["per_s"],
        "p50_ms": ok["p50_ms"],
        "p99_ms": ok["p99_ms"],
        "seconds": ok["seconds"],
        "retry_after_values": sorted(retry_after),
    }


# --------------------------------------------------------------------------- (4) WebSocket
async def ws_load(url: str, frames: list[bytes], streams: int, seconds: float, send_fps: float | None = None) -> dict[str, Any]:
    """``streams`` connections; each sends its next frame when answered (``send_fps`` None) or at a fixed rate."""
    from websockets.asyncio.client import connect

    answered = [0] * streams
    dropped = [0] * streams
    sent = [0] * streams
    rtt: list[float] = []
    errors: Counter = Counter()

    async def one(k: int):
        async with connect(url.replace("http://", "ws://") + "/v1/stream", max_size=None) as ws:
            t_end = time.perf_counter() + seconds
            if send_fps is None:
                while time.perf_counter() < t_end:
                    t = time.perf_counter()
                    await ws.send(frames[sent[k] % len(frames)])
                    sent[k] += 1
                    a = json.loads(await ws.recv())
                    rtt.append(time.perf_counter() - t)
                    if "error" in a:
                        errors[a["error"]["code"]] += 1
                    answered[k] += 1
                    dropped[k] = a.get("dropped", 0)
                return

            async def sender():
                while time.perf_counter() < t_end:
                    await ws.send(frames[sent[k] % len(frames)])
                    sent[k] += 1
                    await asyncio.sleep(1 / send_fps)

            async def receiver():
                while True:
                    a = json.loads(await ws.recv())
                    answered[k] += 1
                    dropped[k] = a.get("dropped", 0)
                    if "error" in a:
                        errors[a["error"]["code"]] += 1
                    if a.get("received") == sent[k] and time.perf_counter() >= t_end:
                        return

            s = asyncio.create_task(sender())
            try:
                await asyncio.wait_for(receiver(), seconds + 30)
            except asyncio.TimeoutError:
                pass
            await s

    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(streams)))
    elapsed = time.perf_counter() - t0
    r = _stats(rtt, elapsed) if rtt else {}
    return {
        "streams": streams,
        "send_fps": send_fps,
        "frames_sent": sum(sent),
        "frames_answered": sum(answered),
        "frames_dropped": sum(dropped),
        "frames_per_s": round(sum(answered) / elapsed, 2),
        "per_stream_fps": round(sum(answered) / elapsed / streams, 2),
        "p50_ms": r.get("p50_ms"),
        "p99_ms": r.get("p99_ms"),
        "errors": dict(errors),
        "seconds": round(elapsed, 2),
    }


def sliding_frames(n: int = 30) -> list[bytes]:
    from skimage.data import astronaut

    face = cv2.resize(astronaut(), (400, 400), interpolation=cv2.INTER_AREA)
    out = []
    for i in range(n):
        x = int(round(240 * (1 - abs(1 - 2 * i / (n - 1)))))
        frame = np.full((480, 640, 3), 40, np.uint8)
        frame[40:440, x : x + 400] = face
        out.append(_jpeg(frame, 85))
    return out


def main(argv=None) -> int:
    from openheadpose.serve.config import default_concurrency

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="Seconds per load level (in process, HTTP, WebSocket).")
    ap.add_argument("--max-concurrency", type=int, default=default_concurrency(), help="The server's --max-concurrency.")
    ap.add_argument("--queue", type=int, default=32, help="The server's --queue (16 clients stay below max-concurrency + queue).")
    ap.add_argument("--clients", default="1,4,16", help="Concurrent HTTP clients per level.")
    ap.add_argument("--overload-clients", type=int, default=None, help="Clients of the overload run [default: 2 x (max-concurrency + queue)].")
    ap.add_argument("--memory-requests", type=int, default=10_000, help="Requests of the memory run.")
    ap.add_argument("--memory-max-seconds", type=float, default=900.0, help="Stop the memory run after this long (the count reached is reported).")
    ap.add_argument("--quick", action="store_true", help="Smoke run: 3 s per level, 500 memory requests; writes to the temporary folder.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.memory_requests = 3.0, 500
    out = args.out or (Path(tempfile.gettempdir()) / "openheadpose-bench-serve-quick.json" if args.quick else ROOT / "benchmarks" / "results" / "serve.json")
    started = _dt.datetime.now().astimezone()
    from skimage.data import astronaut

    image = _jpeg(astronaut())
    crop = _jpeg(astronaut()[40:232, 130:322])  # 192x192 around the face
    truncated = crop[: len(crop) // 2]
    capacity = args.max_concurrency + args.queue
    clients = [int(c) for c in args.clients.split(",")]
    overload = args.overload_clients or 2 * capacity

    print(f"in process: {args.seconds:g} s serial, {args.seconds:g} s on {args.max_concurrency} threads ...", flush=True)
    base = in_process(image, args.seconds, args.max_concurrency)
    print(f"  serial {base['serial']['per_s']} images/s (p50 {base['serial']['p50_ms']} ms); "
          f"{args.max_concurrency} threads {base['threaded']['per_s']} images/s", flush=True)  # fmt: skip
    best_in_process = max(base["serial"]["per_s"], base["threaded"]["per_s"])

    doc: dict[str, Any] = {
        **run_header("serve", 1, started),
        "config": {"max_concurrency": args.max_concurrency, "queue": args.queue, "capacity": capacity, "seconds_per_level": args.seconds,
                   "image": "skimage astronaut 512x512 JPEG q90", "stream_frames": "640x480 JPEG q85, astronaut sliding",
                   "memory_image": "192x192 JPEG face crop; every 20th request truncated", "quick": args.quick},  # fmt: skip
        "in_process": base,
    }
    with Server(args.max_concurrency, args.queue) as srv:
        import httpx

        deadline = time.monotonic() + 120
        while httpx.get(srv.url + "/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        asyncio.run(http_load(srv.url, [image], 2, total=6))  # warm-up
        doc["http"] = []
        for n in clients:
            print(f"HTTP, {n} clients, {args.seconds:g} s ...", flush=True)
            r = asyncio.run(http_load(srv.url, [image], n, seconds=args.seconds))
            r["below_queue_limit"] = n <= capacity
            r["failed"] = r["requests"] - r["status_counts"].get("200", 0)
            r["vs_in_process"] = round(r["requests_per_s"] / best_in_process, 3) if r["requests_per_s"] else None
            doc["http"].append(r)
            print(f"  {r['requests_per_s']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, statuses {r['status_counts']}, "
                  f"{r['vs_in_process']} x in process", flush=True)  # fmt: skip
        print(f"HTTP overload, {overload} clients (capacity {capacity}), {args.seconds:g} s ...", flush=True)
        r = asyncio.run(http_load(srv.url, [image], overload, seconds=args.seconds))
        r["only_200_and_503"] = set(r["status_counts"]) <= {"200", "503"} and not r["transport_errors"]
        doc["overload"] = r
        print(f"  statuses {r['status_counts']}, transport errors {r['transport_errors']}, Retry-After {r['retry_after_values']}", flush=True)

        frames = sliding_frames()
        doc["websocket"] = []
        for n in (1, 4):
            print(f"WebSocket, {n} streams, {args.seconds:g} s ...", flush=True)
            w = asyncio.run(ws_load(srv.url, frames, n, args.seconds))
            doc["websocket"].append(w)
            print(f"  {w['frames_per_s']} frames/s ({w['per_stream_fps']} per stream), p50 {w['p50_ms']} ms, errors {w['errors']}", flush=True)
        print(f"WebSocket flood, 1 stream at 30 frames/s, {args.seconds:g} s ...", flush=True)
        w = asyncio.run(ws_load(srv.url, frames, 1, args.seconds, send_fps=30))
        doc["websocket_flood"] = w
        print(f"  sent {w['frames_sent']}, answered {w['frames_answered']}, dropped {w['frames_dropped']} (counted by the server)", flush=True)

        print(f"memory: {args.memory_requests} requests (16 clients) ...", flush=True)
        pid = srv.proc.pid
        samples: list[tuple[int, float]] = [(0, _rss_mib(pid))]
        step = max(1, args.memory_requests // 10)

        def sample(done: int):
            if done >= len(samples) * step:  # every 10 % of the requests
                samples.append((done, _rss_mib(pid)))

        bodies = [crop] * 19 + [truncated]
        t0 = time.perf_counter()
        m = asyncio.run(http_load(srv.url, bodies, 16, seconds=args.memory_max_seconds, total=args.memory_requests, sample=sample))
        samples.append((m["requests"], _rss_mib(pid)))
        first = next((s for s in samples if s[0] >= step), samples[0])
        doc["memory"] = {
            "requests": m["requests"],
            "seconds": round(time.perf_counter() - t0, 1),
            "status_counts": m["status_counts"],
            "transport_errors": m["transport_errors"],
            "rss_mib": [[n, round(v, 1)] for n, v in samples],
            "rss_at_start_mib": round(samples[0][1], 1),
            "rss_after_10pct_mib": round(first[1], 1),
            "rss_at_end_mib": round(samples[-1][1], 1),
            "growth_after_10pct_mib": round(samples[-1][1] - first[1], 1),
        }
        print(f"  {m['requests']} requests in {doc['memory']['seconds']} s, statuses {m['status_counts']}; RSS "
              f"{doc['memory']['rss_at_start_mib']} -> {doc['memory']['rss_after_10pct_mib']} (10 %) -> {doc['memory']['rss_at_end_mib']} MiB", flush=True)  # fmt: skip
    below = [r for r in doc["http"] if r["below_queue_limit"]]
    doc["summary"] = {
        "failed_below_queue_limit": sum(r["failed"] for r in below),
        "overload_only_503": doc["overload"]["only_200_and_503"] and doc["overload"]["status_counts"].get("503", 0) > 0,
        "memory_growth_mib": doc["memory"]["growth_after_10pct_mib"],
    }
    print(json.dumps(doc["summary"]))
    write_result(out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
