"""``headpose serve``: every endpoint and every error through FastAPI's test client, the queue and
timeout rules made deterministic with a stand-in estimator that waits for the test, and a real
uvicorn (``headpose serve --port 0``) on 127.0.0.1 driven by concurrent clients.
"""

from __future__ import annotations

import json
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from click.testing import CliRunner
from conftest import needs_face_models
from fastapi.testclient import TestClient

from openheadpose.inference.results import Faces, Heads
from openheadpose.serve.app import create_app
from openheadpose.serve.config import ServeConfig

STATIC = Path(__file__).resolve().parents[1] / "src" / "openheadpose" / "serve" / "static"


def jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    return buf.tobytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` and whose data is a few bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()


def wait_until(cond, what: str, timeout: float = 20.0) -> None:
    """Poll ``cond`` until it holds (the tests wait for a state, never for a fixed time)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def assert_error(r, status: int, code: str, *words: str) -> dict:
    """A JSON error with this status and code, its message naming ``words``, and the response's request id."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    for w in words:
        assert w in err["message"], err["message"]
    assert err["request_id"] and err["request_id"] == r.headers["x-request-id"]
    return err


# --------------------------------------------------------------------------- the real models, in process
LIMITS = ServeConfig(max_body_bytes=500_000, max_pixels=1_000_000, max_concurrency=2, queue=8)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(LIMITS)) as c:
        wait_until(lambda: c.get("/readyz").status_code == 200, "the models to load", 60)
        yield c


@needs_face_models
def test_health_ready_info_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and "detector" in ready["stages"]
    info = client.get("/v1/info").json()
    assert info["limits"]["max_pixels"] == 1_000_000 and info["limits"]["queue"] == 8
    schema = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/interact", "/healthz", "/readyz"):
        assert path in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    # the interactive docs come from the package's own Swagger UI files, not a CDN
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert not re.search(r"(src|href)=['\"]https?://", docs.text), "the docs page loads something from elsewhere"
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


@needs_face_models
def test_page_is_served_and_loads_nothing_from_elsewhere(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'id="status"' in r.text and "<canvas" in r.text
    for name in ("index.html", "app.js", "chart.js", "style.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"https?://", text), f"{name} names a remote URL (the page must work offline)"
        assert client.get(f"/static/{name}").status_code == 200


@needs_face_models
def test_predict_is_the_cli_record(client, astronaut, tmp_path):
    """The same bytes through the service and through what `headpose predict --json` runs give the same record."""
    from openheadpose.inference.builder import build_estimator

    data = jpeg(astronaut)
    path = tmp_path / "astro.jpg"
    path.write_bytes(data)
    (cli_record,) = [r.to_dict() for r in build_estimator(track=True).stream(str(path))]
    raw = client.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200, raw.text
    form = client.post("/v1/predict", files={"file": ("astro.jpg", data, "image/jpeg")})
    assert form.status_code == 200, form.text
    assert raw.json()["source"] == "upload" and form.json()["source"] == "astro.jpg"
    for got in (raw.json(), form.json()):
        assert {**got, "source": None} == {**cli_record, "source": None}
    assert len(cli_record["heads"]) == 1 and cli_record["heads"][0]["track_id"] == 0


@needs_face_models
def test_predict_options(client, astronaut):
    data = jpeg(astronaut)
    base = client.post("/v1/predict", content=data).json()["heads"][0]
    untracked = client.post("/v1/predict?track=false", content=data).json()["heads"][0]
    assert untracked["track_id"] is None and untracked["box"] == base["box"]
    assert client.post("/v1/predict?min_score=1", content=data).json()["heads"] == []  # no score reaches 1
    # --fov: rotations in the camera frame; the astronaut's face is off the image centre, so they change
    cam = client.post("/v1/predict?fov=60", content=data).json()["heads"][0]
    assert cam["box"] == base["box"] and cam["rotation"] != base["rotation"]
    # mirror=false: one read instead of the default's two (same face, a different rotation)
    single = client.post("/v1/predict?mirror=false", content=data).json()["heads"][0]
    assert single["box"] == base["box"] and single["rotation"] != base["rotation"]
    assert client.post("/v1/predict?mirror=true", content=data).json()["heads"][0]["rotation"] == base["rotation"]


@needs_face_models
def test_interact_is_the_cli_record(client, astronaut, tmp_path):
    from openheadpose.apps.interaction import (
        InteractionConfig,
        find_interactions,
        interaction_record,
    )
    from openheadpose.inference.builder import build_estimator

    data = jpeg(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))  # two heads, facing each other
    (tmp_path / "two.jpg").write_bytes(data)
    (res,) = list(build_estimator(track=True).stream(str(tmp_path / "two.jpg")))
    want = interaction_record(res, find_interactions(res.heads, (res.width, res.height), InteractionConfig(depth="plane")))
    r = client.post("/v1/interact?depth=plane", content=data)
    assert r.status_code == 200, r.text
    got = r.json()
    assert len(got["heads"]) == 2 and len(got["pairs"]) == 1 and {"track_a", "track_b"} <= set(got["pairs"][0])
    assert {**got, "source": None} == json.loads(json.dumps({**want, "source": None}))


@needs_face_models
def test_stream_tracks_one_head(client, astronaut):
    with client.websocket_connect("/v1/stream") as ws:
        answers = []
        for dx in (0, 4, 8):
            ws.send_bytes(jpeg(np.roll(astronaut, dx, axis=1)))
            answers.append(json.loads(ws.receive_text()))
    assert [a["frame"] for a in answers] == [0, 1, 2]
    assert all(a["dropped"] == 0 for a in answers) and answers[-1]["received"] == 3
    assert [[h["track_id"] for h in a["heads"]] for a in answers] == [[0], [0], [0]]
    assert answers[-1]["fps"] is not None and answers[-1]["fps"] > 0


# --------------------------------------------------------------------------- every error
def truncated_jpeg(rgb):
    data = jpeg(rgb)
    return data[: len(data) // 2]


def gif(rgb):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="GIF")
    return buf.getvalue()


@needs_face_models
@pytest.mark.parametrize(
    "make, status, code, words",
    [
        (lambda a: b"", 400, "empty_body", ["empty body"]),
        (lambda a: b"/etc/passwd", 400, "not_an_image", ["not an image", "never reads a file"]),
        (lambda a: bytes(range(256)) * 4, 400, "not_an_image", ["not an image"]),
        (truncated_jpeg, 400, "truncated_image", ["truncated JPEG"]),
        (gif, 415, "unsupported_format", ["GIF"]),
        (lambda a: png(np.zeros((1200, 1000, 3), np.uint8)), 413, "too_many_pixels", ["1000x1200 pixels (1.2 megapixels) is over the limit of 1 megapixels"]),  # 1.2 MP > 1 MP, in the CLI's words
        (lambda a: png_header_only(100_000, 100_000), 413, "too_many_pixels", ["100000x100000 pixels"]),  # 10 gigapixels claimed in 100 bytes
        (lambda a: b"\0" * 600_000, 413, "body_too_large", ["limit of 500000 bytes"]),
    ],
    ids=["empty", "a-path", "binary-junk", "truncated", "gif", "too-many-pixels", "png-bomb", "too-large"],
)
def test_bad_images(client, astronaut, make, status, code, words):
    data = make(astronaut)
    assert_error(client.post("/v1/predict", content=data), status, code, *words)
    assert_error(client.post("/v1/interact", files={"file": ("x.bin", data)}) if data else client.post("/v1/interact", content=data), status, code, *words)


@needs_face_models
def test_body_limit_holds_without_content_length(client):
    def chunks():  # a chunked upload: no Content-Length to check in advance
        for _ in range(10):
            yield b"\0" * 100_000

    r = client.post("/v1/predict", content=chunks())
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "body_too_large", "500000")


@needs_face_models
@pytest.mark.parametrize(
    "query, status, code, words",
    [
        ("modle=default", 422, "unknown_option", ["'modle'", "did you mean 'model'"]),
        ("min_score=abc", 422, "invalid_option", ["min_score", "'abc'"]),
        ("min_score=2", 422, "invalid_option", ["min_score"]),
        ("fov=0", 422, "invalid_option", ["fov"]),
        ("mirror=maybe", 422, "invalid_option", ["mirror"]),
        ("pose=geometric&mirror=true", 422, "unsupported_option", ["--mirror", "geometric"]),
        ("detector=blazefac", 422, "unsupported_option", ["blazefac", "blazeface"]),
        ("model=hhpnet&pose=geometric", 422, "unsupported_option", ["--pose"]),
        ("model=no-such-net", 422, "unsupported_option", ["no-such-net"]),
    ],
)
def test_bad_options(client, astronaut, query, status, code, words):
    assert_error(client.post(f"/v1/predict?{query}", content=jpeg(astronaut)), status, code, *words)


@needs_face_models
def test_other_request_errors(client, astronaut):
    assert_error(client.post("/v1/interact?depth=sideways", content=jpeg(astronaut)), 422, "invalid_option", "depth")
    assert_error(client.post("/v1/interact?cone=90", content=jpeg(astronaut)), 422, "invalid_option", "cone")
    assert_error(client.post("/v1/predict", data={"note": "no file"}, files={"other": ("", b"")}), 400, "missing_file", "'file'")
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")
    assert_error(client.get("/v2/predict"), 404, "not_found", "/v2/predict")


@needs_face_models
def test_request_ids_and_access_log(client, astronaut, caplog):
    caplog.set_level("INFO", logger="openheadpose.serve.access")
    r = client.post("/v1/predict?track=false", content=b"nope", headers={"X-Request-ID": "client-42"})
    assert r.headers["x-request-id"] == "client-42" and r.json()["error"]["request_id"] == "client-42"
    bad_id = client.get("/healthz", headers={"X-Request-ID": "no spaces allowed " + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", bad_id.headers["x-request-id"])  # replaced, not echoed
    lines = [getattr(rec, "fields", {}) for rec in caplog.records if rec.name == "openheadpose.serve.access"]
    mine = [f for f in lines if f.get("request_id") == "client-42"]
    assert len(mine) == 1
    assert mine[0]["status"] == 400 and mine[0]["path"] == "/v1/predict" and mine[0]["method"] == "POST" and mine[0]["ms"] >= 0
    assert "track=false" not in json.dumps(lines)  # paths are logged without their query (it may hold a key)


@needs_face_models
def test_api_key(client, astronaut):
    est = client.app.state.estimators.get(client.app.state.estimators.default_key)  # the models already loaded
    with TestClient(create_app(ServeConfig(api_key="s3cret"), estimator=est)) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200 and c.get("/").status_code == 200
        assert_error(c.post("/v1/predict", content=jpeg(astronaut)), 401, "unauthorized", "X-API-Key")
        assert_error(c.post("/v1/predict", content=jpeg(astronaut), headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert_error(c.get("/v1/info"), 401, "unauthorized")
        assert c.post("/v1/predict", content=jpeg(astronaut), headers={"X-API-Key": "s3cret"}).status_code == 200
        with c.websocket_connect("/v1/stream") as ws:
            assert json.loads(ws.receive_text())["error"]["code"] == "unauthorized"
            with pytest.raises(Exception) as closed:
                ws.receive_text()
            assert getattr(closed.value, "code", None) == 1008
        with c.websocket_connect("/v1/stream?key=s3cret") as ws:
            ws.send_bytes(jpeg(astronaut))
            assert len(json.loads(ws.receive_text())["heads"]) == 1


@needs_face_models
def test_stream_errors(client, astronaut):
    with client.websocket_connect("/v1/stream") as ws:  # a bad frame is answered and the stream goes on
        ws.send_bytes(b"not a jpeg")
        bad = json.loads(ws.receive_text())
        assert bad["error"]["code"] == "not_an_image" and "stream frame 0" in bad["error"]["message"]
        ws.send_bytes(jpeg(astronaut))
        good = json.loads(ws.receive_text())
        assert good["frame"] == 1 and len(good["heads"]) == 1
    for query, code in (("modle=x", "unknown_option"), ("min_score=x", "invalid_option"), ("mirror=x", "invalid_option")):
        with client.websocket_connect(f"/v1/stream?{query}") as ws:
            assert json.loads(ws.receive_text())["error"]["code"] == code
    with client.websocket_connect("/v1/stream?detector=nope") as ws:  # found when the first frame needs the models
        ws.send_bytes(jpeg(astronaut))
        assert json.loads(ws.receive_text())["error"]["code"] == "unsupported_option"


# --------------------------------------------------------------------------- queue, timeouts, drops: a stand-in that waits for the test
class Gate:
    """An estimator that finds no heads, and holds every image until ``release`` is set."""

    landmarker = None
    pose = None
    names: ClassVar[dict] = {"detector": "gate"}

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.running = self.max_running = 0

    def find_faces(self, image, timings=None):
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.entered.release()
        try:
            assert self.release.wait(30), "the test never released the gate"
        finally:
            with self._lock:
                self.running -= 1
        return Faces.empty()

    def predict(self, image):
        self.find_faces(image)
        return Heads.empty(), {}


def gated(**limits):
    gate = Gate()
    return gate, TestClient(create_app(ServeConfig(**limits), estimator=gate))


def test_full_queue_answers_503_with_retry_after():
    gate, client = gated(max_concurrency=1, queue=1)
    img = jpeg(np.zeros((32, 32, 3), np.uint8))
    with client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/v1/predict", content=img)
        assert gate.entered.acquire(timeout=20)  # the first runs ...
        second = pool.submit(client.post, "/v1/predict", content=img)
        wait_until(lambda: client.get("/v1/info").json()["load"]["waiting"] == 1, "the second request to wait")  # ... the second waits
        r = client.post("/v1/predict", content=img)  # ... and the third finds the queue full
        assert_error(r, 503, "busy", "retry")
        assert int(r.headers["retry-after"]) >= 1
        gate.release.set()
        assert first.result(20).status_code == 200 and second.result(20).status_code == 200
        assert client.get("/v1/info").json()["load"]["rejected"] == 1
    assert gate.max_running == 1


def test_timeout_answers_504_and_keeps_the_slot():
    gate, client = gated(max_concurrency=1, queue=0, timeout_s=0.3)
    img = jpeg(np.zeros((32, 32, 3), np.uint8))
    with client:
        assert_error(client.post("/v1/predict", content=img), 504, "timeout", "0.3 s")
        # the thread cannot be stopped: its slot stays taken (no second inference starts beside it)
        assert client.get("/v1/info").json()["load"]["running"] == 1
        assert_error(client.post("/v1/predict", content=img), 503, "busy")
        gate.release.set()
        wait_until(lambda: client.get("/v1/info").json()["load"]["running"] == 0, "the slot to free")
        assert client.post("/v1/predict", content=img).status_code == 200
    assert gate.max_running == 1


def test_stream_drops_stale_frames_and_counts_them():
    gate, client = gated(max_concurrency=1)
    frames = [jpeg(np.full((32, 32, 3), v, np.uint8)) for v in (10, 20, 30, 40)]
    with client, client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(frames[0])
        assert gate.entered.acquire(timeout=20)  # frame 0 is being processed ...
        for f in frames[1:]:
            ws.send_bytes(f)  # ... while 1, 2 and 3 arrive: 3 overwrites 2, which overwrote 1
        wait_until(lambda: client.get("/v1/info").json()["load"]["stream_frames_received"] == 4, "the server to read every frame")
        gate.release.set()
        a, b = json.loads(ws.receive_text()), json.loads(ws.receive_text())
    assert (a["frame"], a["received"], a["dropped"]) == (0, 4, 2)
    assert (b["frame"], b["dropped"]) == (3, 2)


def test_stream_limit():
    gate, client = gated(max_streams=1)
    gate.release.set()
    with client, client.websocket_connect("/v1/stream") as first:
        with client.websocket_connect("/v1/stream") as second:
            assert json.loads(second.receive_text())["error"]["code"] == "busy"
        first.send_bytes(jpeg(np.zeros((32, 32, 3), np.uint8)))
        assert json.loads(first.receive_text())["heads"] == []


# --------------------------------------------------------------------------- the command
def test_cli_refuses_an_open_host_without_a_key(monkeypatch):
    from openheadpose.cli import cli

    monkeypatch.delenv("OPENHEADPOSE_API_KEY", raising=False)
    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "refusing to serve on 0.0.0.0 without an API key" in r.output


def test_cli_names_the_missing_extra(monkeypatch):
    import importlib.util

    from openheadpose.cli import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 2 and 'pip install "openheadpose[serve]"' in r.output and "fastapi" in r.output


# --------------------------------------------------------------------------- a real uvicorn, concurrent clients
@pytest.fixture(scope="module")
def server():
    """``headpose serve --port 0`` in a subprocess; yields (base URL, stderr lines so far)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openheadpose.cli", "serve", "--port", "0", "--max-concurrency", "2", "--queue", "32"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()

    def port():
        for line in lines:
            m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        assert proc.poll() is None, "headpose serve exited:\n" + "".join(lines)
        return None

    try:
        wait_until(lambda: port() is not None, "headpose serve to start", 90)
        yield f"http://127.0.0.1:{port()}", lines, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@needs_face_models
def test_real_server_concurrent_clients(server, astronaut):
    import httpx

    url, lines, _ = server
    data = jpeg(astronaut)

    def one(i: int):
        with httpx.Client(timeout=60) as c:
            return [c.post(f"{url}/v1/predict", content=data, headers={"X-Request-ID": f"load-{i}-{k}"}) for k in range(2)]

    with ThreadPoolExecutor(8) as pool:
        responses = [r for rs in pool.map(one, range(8)) for r in rs]
    assert [r.status_code for r in responses] == [200] * 16  # 8 clients, far below 2 running + 32 waiting: none refused
    assert len({json.dumps(r.json()["heads"]) for r in responses}) == 1  # every answer the same
    assert {r.headers["x-request-id"] for r in responses} == {f"load-{i}-{k}" for i in range(8) for k in range(2)}
    wait_until(lambda: sum('"request_id": "load-' in ln for ln in lines) == 16, "16 access-log lines")
    record = json.loads(next(ln for ln in lines if '"request_id": "load-0-0"' in ln))
    assert record["status"] == 200 and record["path"] == "/v1/predict" and record["logger"] == "openheadpose.serve.access"


@needs_face_models
def test_real_server_websocket_and_shutdown(server, astronaut):
    from websockets.sync.client import connect

    url, _, proc = server
    with connect(url.replace("http", "ws") + "/v1/stream") as ws:
        answers = []
        for dx in (0, 3):
            ws.send(jpeg(np.roll(astronaut, dx, axis=1)))
            answers.append(json.loads(ws.recv(timeout=60)))
    assert [[h["track_id"] for h in a["heads"]] for a in answers] == [[0], [0]]
    proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
    assert proc.wait(20) == 0
