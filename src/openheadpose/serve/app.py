"""The FastAPI application: ``create_app(config)``.

Endpoints:

* ``POST /v1/predict``: an image (raw bytes, or the ``file`` field of a multipart form) ->
  the record ``headpose predict --json`` writes for it; query options as the CLI's
  (``model``, ``detector``, ``landmarker``, ``pose``, ``keypoints``, ``min_score``, ``fov``, ``mirror``,
  ``track``, ``smooth``).
* ``POST /v1/interact``: the same -> the record ``headpose interact --json`` writes
  (``cone``, ``depth`` and ``fov`` as its options).
* ``WebSocket /v1/stream``: the client sends frames (JPEG or PNG bytes), the server
  answers each frame it processes with its heads, tracked (one
  :class:`~openheadpose.inference.tracking.HeadTracker` per connection). A reader task
  keeps only the newest frame; frames overwritten before they were processed are counted
  as ``dropped`` in every answer, so a client never waits on a queue.
* ``GET /healthz`` (the process answers), ``GET /readyz`` (the default models are loaded),
  ``GET /v1/info``, ``GET /`` (the page), ``/docs`` and ``/openapi.json``.

Every response carries ``X-Request-ID`` (the client's, or a new one); every error is
``{"error": {"code", "message", "request_id"}}``; every request leaves one JSON access-log
line. With an API key, ``/v1/`` needs it (``X-API-Key``; ``?key=`` on the WebSocket).
No request can name a file: images arrive as bytes, models by their registered names.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hmac
import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect, WebSocketState

from openheadpose.inference.defaults import STREAM
from openheadpose.io.writers import jsonable
from openheadpose.serve.config import CONFIG_ENV, ServeConfig
from openheadpose.serve.engine import Engine, EstimatorCache
from openheadpose.serve.errors import ApiError
from openheadpose.serve.images import check_header, decode_image
from openheadpose.serve.logs import ACCESS_LOGGER

STATIC = Path(__file__).with_name("static")
log = logging.getLogger("openheadpose.serve")
access_log = logging.getLogger(ACCESS_LOGGER)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

#: Query options of each endpoint (anything else is refused by name).
ESTIMATOR_PARAMS = {"model", "detector", "landmarker", "pose", "keypoints", "min_score", "mirror"}
PREDICT_PARAMS = ESTIMATOR_PARAMS | {"fov", "track", "smooth"}
INTERACT_PARAMS = ESTIMATOR_PARAMS | {"cone", "depth", "fov", "track", "smooth"}
STREAM_PARAMS = ESTIMATOR_PARAMS | {"fov", "smooth", "key"}

#: WebSocket close codes: policy violation (bad key or options), try again later (too many streams).
WS_POLICY, WS_TRY_LATER = 1008, 1013

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image (JPEG, PNG, BMP, TIFF or WebP): its raw bytes, or the `file` field of a multipart form.",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
        },
    }
}
_ERROR_SCHEMA = {"content": {"application/json": {"example": {"error": {"code": "not_an_image", "message": "upload: not an image", "request_id": "3f2a..."}}}}}
_ERRORS = {
    400: {"description": "Not an image, truncated, corrupt, or an empty body", **_ERROR_SCHEMA},
    401: {"description": "Missing or wrong API key", **_ERROR_SCHEMA},
    413: {"description": "Body or image too large", **_ERROR_SCHEMA},
    415: {"description": "An image format the server does not read", **_ERROR_SCHEMA},
    422: {"description": "Unknown or unsupported option", **_ERROR_SCHEMA},
    503: {"description": "Queue full (see Retry-After)", **_ERROR_SCHEMA},
    504: {"description": "Not answered in time", **_ERROR_SCHEMA},
}


def _key_ok(expected: str | None, given: str | None) -> bool:
    return expected is None or (given is not None and hmac.compare_digest(given.encode(), expected.encode()))


def _check_params(params, allowed: set[str]) -> None:
    """Refuse a query option the endpoint does not know, naming it (and its close match)."""
    for name in params:
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ApiError(422, "unknown_option", f"unknown option {name!r}{hint}; options: {', '.join(sorted(allowed))}")


def _request_id(scope) -> str | None:
    return scope.get("state", {}).get("request_id")


def _swagger_ui_path() -> Path | None:
    """Swagger UI's files from the ``swagger-ui-bundle`` wheel (the ``serve`` extra), or ``None`` without it (no ``/docs``)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(str(swagger_ui_path))
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _error_response(exc: ApiError, rid: str | None) -> JSONResponse:
    return JSONResponse(exc.body(rid), status_code=exc.status, headers=exc.headers)


class RequestContext:
    """ASGI middleware: request id, API key on ``/v1/``, body-size limit and one access-log line per request.

    The body limit is checked twice: from ``Content-Length`` before anything is read, and
    while the body streams in (a chunked upload has no length): the read that passes the
    limit raises :class:`ApiError` 413 inside the endpoint.
    """

    def __init__(self, app, config: ServeConfig):
        self.app = app
        self.config = config

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["log"] = {}
        t0 = time.perf_counter()
        info: dict[str, Any] = {"status": None, "bytes": 0}
        try:
            if scope["type"] == "websocket":  # the endpoint checks the key: it can say why it closes
                info["status"] = 101
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, headers, rid, info)
        finally:
            fields = {"request_id": rid, "type": scope["type"], "method": scope.get("method", "WS"), "path": scope["path"],
                      "status": info["status"], "bytes": info["bytes"], "ms": round(1000 * (time.perf_counter() - t0), 2),
                      "client": (scope.get("client") or ("", 0))[0], **state["log"]}  # fmt: skip
            access_log.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra={"fields": fields})

    async def _http(self, scope, receive, send, headers, rid, info):
        async def send_with_id(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            elif message["type"] == "http.response.body":
                info["bytes"] += len(message.get("body", b""))
            await send(message)

        limit = self.config.max_body_bytes
        refusal = None
        if scope["path"].startswith("/v1/") and not _key_ok(self.config.api_key, headers.get("x-api-key")):
            refusal = ApiError(401, "unauthorized", "missing or wrong API key: send it in the X-API-Key header")
        elif headers.get("content-length", "0").isdigit() and int(headers.get("content-length", "0")) > limit:
            refusal = ApiError(413, "body_too_large", f"body of {int(headers['content-length'])} bytes, over this server's limit of {limit} bytes")
        if refusal is not None:
            await _error_response(refusal, rid)(scope, receive, send_with_id)
            return
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, "body_too_large", f"body over this server's limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send_with_id)


async def _read_upload(request: Request) -> tuple[bytes, str]:
    """The image's bytes and a name for messages: raw body, or the multipart form's ``file`` (else its only file)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=16)
        f = form.get("file")
        if not isinstance(f, UploadFile):
            files = [v for v in form.values() if isinstance(v, UploadFile)]
            if not files:
                raise ApiError(400, "missing_file", "the multipart form has no file: send the image as its 'file' field")
            f = files[0]
        return await f.read(), f.filename or "upload"
    return await request.body(), "upload"


def _frame_result(est, rgb, name: str, frame: int, track: bool, smooth: bool, tracker=None, fps: float | None = None):
    """One image's :class:`~openheadpose.inference.results.FrameResult`, as ``headpose predict`` makes it.

    ``track``: through a tracker (``tracker``, or a fresh one: ``predict`` tracks by default,
    so a single image's heads get ``track_id`` 0, 1, ...), else every head on its own.
    """
    from openheadpose.inference.defaults import default_tracker
    from openheadpose.inference.results import FrameResult

    if track:
        tracker = tracker if tracker is not None else default_tracker(True, smooth)
        heads, timings = tracker.step(est, rgb, fps)
        place = getattr(est, "place", None)  # positions are per frame, placed after the tracker (as HeadPoseEstimator.stream does)
        heads = heads if place is None else place(heads, rgb, timings)
    else:
        heads, timings = est.predict(rgb)
    h, w = rgb.shape[:2]
    return FrameResult(name, frame, int(w), int(h), heads, timings, fps=fps)


def create_app(config: ServeConfig | None = None, *, estimator=None) -> FastAPI:
    """The service as a FastAPI application.

    Args:
        config: models and limits (default :class:`ServeConfig`).
        estimator: the default estimator, already built (``headpose serve`` builds it to
            check its options); else it is built in the background at start-up, and
            ``/readyz`` answers 503 until it is.
    """
    config = config or ServeConfig()
    estimators = EstimatorCache(config)
    if estimator is not None:
        estimators.put(estimators.default_key, estimator)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = Engine(config, estimators)
        app.state.engine = engine
        app.state.streams = 0
        app.state.stream_frames = {"received": 0, "dropped": 0}  # over every stream, for /v1/info
        warm = None
        if not estimators.ready():
            warm = asyncio.create_task(_warm(engine))
        yield
        if warm is not None:
            warm.cancel()
        engine.close()

    async def _warm(engine: Engine) -> None:
        try:
            await engine.run(lambda: estimators.get(estimators.default_key), admit=False, timeout_s=None)
            log.info("models loaded", extra={"fields": {"stages": estimators.get(estimators.default_key).names}})
        except ApiError as exc:
            estimators.error = exc.message
            log.error("models could not be loaded: %s", exc.message)

    app = FastAPI(
        title="openheadpose",
        summary="Head pose (yaw, pitch, roll) of every head in images and video streams.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served below from the swagger-ui-bundle wheel: FastAPI's own page loads Swagger UI from a CDN
        redoc_url=None,  # ReDoc has no offline copy: /openapi.json and /docs cover it
    )
    app.state.config = config
    app.state.estimators = estimators
    app.add_middleware(RequestContext, config=config)

    # ------------------------------------------------------------------ errors
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return _error_response(exc, _request_id(request.scope))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {e.get('msg')}" + (f" (got {e['input']!r})" if e.get("input") is not None else ""))
        return _error_response(ApiError(422, "invalid_option", "; ".join(parts)), _request_id(request.scope))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        msg = f"no such endpoint: {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return _error_response(ApiError(exc.status_code, code, msg, dict(exc.headers or {})), _request_id(request.scope))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception):
        rid = _request_id(request.scope)
        log.exception("request failed", extra={"fields": {"request_id": rid}})
        return _error_response(ApiError(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log for request {rid}"), rid)

    # ------------------------------------------------------------------ page and health
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    docs_assets = _swagger_ui_path()
    if docs_assets is not None:
        from fastapi.openapi.docs import get_swagger_ui_html

        app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def docs():
            return get_swagger_ui_html(
                openapi_url=app.openapi_url, title="openheadpose API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="data:,",
            )

    @app.get("/healthz", summary="The process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="The default models are loaded", responses={503: {"description": "Still loading, or failed"}})
    async def readyz():
        if estimators.ready():
            return {"status": "ready", "stages": estimators.get(estimators.default_key).names}
        if estimators.error:
            raise ApiError(503, "models_failed", f"the default models could not be loaded: {estimators.error}")
        raise ApiError(503, "loading", "the models are still loading", {"Retry-After": "1"})

    @app.get("/v1/info", summary="The server's default models, limits and load")
    async def info(request: Request):
        c = request.app.state.config
        return {
            "version": app.version,
            "defaults": {k: v for k, v in c.estimator_options().items() if v is not None},
            "stages": estimators.get(estimators.default_key).names if estimators.ready() else None,
            "limits": {"max_concurrency": c.max_concurrency, "queue": c.queue, "timeout_s": c.timeout_s, "max_body_bytes": c.max_body_bytes,
                       "max_pixels": c.max_pixels, "max_streams": c.max_streams},  # fmt: skip
            "load": {**request.app.state.engine.stats(), "streams": request.app.state.streams,
                     **{f"stream_frames_{k}": v for k, v in request.app.state.stream_frames.items()}},
        }

    # ------------------------------------------------------------------ one image
    def _estimator_key(**opts) -> tuple:
        return estimators.key(opts)

    @app.post("/v1/predict", summary="Heads of one image", openapi_extra=_UPLOAD_BODY, responses=_ERRORS)
    async def predict(
        request: Request,
        model: str | None = Query(None, description="'default', or a network name (see `headpose models`); default: the server's"),
        detector: str | None = Query(None, description="Face detector name"),
        landmarker: str | None = Query(None, description="Landmarker name, or 'none'"),
        pose: str | None = Query(None, description="Pose stage of the default model"),
        keypoints: str | None = Query(None, description="Keypoint source of a keypoint network"),
        min_score: float | None = Query(None, ge=0, le=1, description="Minimum head score"),
        fov: float | None = Query(None, ge=1, le=179, description="Horizontal field of view, degrees: rotations in the camera frame"),
        track: bool = Query(STREAM.track, description="As `headpose predict --track`: heads numbered by track_id"),
        smooth: bool = Query(STREAM.smooth, description="As `headpose predict --smooth`"),
        mirror: bool | None = Query(None, description="As `headpose predict --mirror`: read each face and its mirror image, averaged (default: the server's)"),
    ) -> dict:
        """The record `headpose predict --json` writes for this image: `source` (the uploaded file's name, else `upload`),
        `frame`, `width`, `height`, `heads` (box, score, yaw, pitch, roll, rotation, sigma, track_id)."""
        _check_params(request.query_params, PREDICT_PARAMS)
        key = _estimator_key(model=model, detector=detector, landmarker=landmarker, pose=pose, keypoints=keypoints, min_score=min_score, fov=fov, mirror=mirror)
        data, name = await _read_upload(request)
        check_header(data, name, config.max_pixels)  # before taking a place in the queue

        def work():
            est = estimators.get(key)
            rgb = decode_image(data, name, config.max_pixels)
            return _frame_result(est, rgb, name, 0, track, smooth).to_dict()

        return JSONResponse(jsonable(await request.app.state.engine.run(work)))

    @app.post("/v1/interact", summary="Who looks at whom in one image", openapi_extra=_UPLOAD_BODY, responses=_ERRORS)
    async def interact(
        request: Request,
        model: str | None = Query(None, description="As /v1/predict"),
        detector: str | None = Query(None),
        landmarker: str | None = Query(None),
        pose: str | None = Query(None),
        keypoints: str | None = Query(None),
        min_score: float | None = Query(None, ge=0, le=1),
        cone: float = Query(30.0, ge=1, le=60, description="Half-angle in degrees of a view cone before sigma widens it"),
        depth: Literal["position", "size", "plane"] = Query("position", description="position: the heads' positions (pair distances in metres); size: bigger faces are nearer; plane: all heads at one depth"),
        fov: float = Query(60.0, ge=1, le=179, description="Camera field of view across the image's longer side, degrees (depth=size)"),
        track: bool = Query(STREAM.track),
        smooth: bool = Query(STREAM.smooth),
        mirror: bool | None = Query(None, description="As /v1/predict"),
    ) -> dict:
        """The record `headpose interact --json` writes for this image: the heads, then `pairs`, `groups` and `camera`."""
        from openheadpose.apps.interaction import (
            InteractionConfig,
            find_interactions,
            interaction_record,
        )

        _check_params(request.query_params, INTERACT_PARAMS)
        key = _estimator_key(model=model, detector=detector, landmarker=landmarker, pose=pose, keypoints=keypoints, min_score=min_score, mirror=mirror)
        # a server started with --camera reports rotations in the camera's frame
        inter_config = InteractionConfig(cone_deg=cone, max_cone_deg=max(60.0, cone), depth=depth, fov_deg=fov, apparent_rotations=config.camera is None)
        data, name = await _read_upload(request)
        check_header(data, name, config.max_pixels)

        def work():
            est = estimators.get(key)
            rgb = decode_image(data, name, config.max_pixels)
            res = _frame_result(est, rgb, name, 0, track, smooth)
            return interaction_record(res, find_interactions(res.heads, (res.width, res.height), inter_config))

        return JSONResponse(jsonable(await request.app.state.engine.run(work)))

    # ------------------------------------------------------------------ streams
    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket):
        """Frames in (binary JPEG / PNG), one answer per processed frame out (JSON text); see the module docstring."""
        rid = _request_id(ws.scope)
        await ws.accept()
        try:
            if not _key_ok(config.api_key, ws.headers.get("x-api-key") or ws.query_params.get("key")):
                raise ApiError(401, "unauthorized", "missing or wrong API key: add ?key=... to the WebSocket's URL")
            _check_params(ws.query_params, STREAM_PARAMS)
            opts = _stream_options(ws.query_params)
            key = _estimator_key(**{k: v for k, v in opts.items() if k != "smooth"})
            if ws.app.state.streams >= config.max_streams:
                raise ApiError(503, "busy", f"{config.max_streams} streams are open, this server's limit; retry later")
        except ApiError as exc:
            await ws.send_text(json.dumps(exc.body(rid)))
            await ws.close(WS_TRY_LATER if exc.status == 503 else WS_POLICY, exc.code)
            ws.scope["state"]["log"].update(close=exc.code)
            return
        ws.app.state.streams += 1
        try:
            await _serve_stream(ws, key, opts["smooth"], rid)
        finally:
            ws.app.state.streams -= 1

    async def _serve_stream(ws: WebSocket, key: tuple, smooth: bool, rid: str) -> None:
        from openheadpose.inference.defaults import default_tracker

        engine: Engine = ws.app.state.engine
        totals = ws.app.state.stream_frames
        latest: bytes | None = None
        received = dropped = answered = 0
        closed = reset = False
        wake = asyncio.Event()

        async def reader():
            nonlocal latest, received, dropped, closed, reset
            try:
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        break
                    data = msg.get("bytes")
                    if data is None:  # text frames are control messages
                        if (msg.get("text") or "").strip() in ('{"reset": true}', '{"reset":true}', "reset"):
                            reset = True  # done by the worker before its next frame (a step may be running now)
                            continue
                        data = (msg.get("text") or "").encode()  # answered as "not an image"
                    received += 1
                    totals["received"] += 1
                    if latest is not None:
                        dropped += 1
                        totals["dropped"] += 1
                    latest = data
                    wake.set()
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                closed = True
                wake.set()

        tracker = default_tracker(True, smooth)
        task = asyncio.create_task(reader())
        rate = t_prev = t_start = None
        try:
            while True:
                await wake.wait()
                wake.clear()
                if closed:
                    break
                if latest is None:
                    continue
                data, latest, index = latest, None, received - 1
                if reset:
                    tracker.reset()
                    reset = False
                now = time.perf_counter()
                # the tracker's filters need the time between the frames it sees (dropped ones lengthen it)
                fps = None if t_start is None else min(60.0, max(1.0, 1.0 / max(now - t_start, 1e-3)))
                t_start = now
                name = f"stream frame {index}"

                def work(data=data, name=name, index=index, fps=fps):
                    est = estimators.get(key)
                    rgb = decode_image(data, name, config.max_pixels)
                    return _frame_result(est, rgb, "stream", index, True, smooth, tracker, fps)

                try:
                    res = await engine.run(work, admit=False, timeout_s=None)  # no timeout: the tracker must not be stepped twice at once
                    answer = res.to_dict()
                    answer["timings_ms"] = {k: round(1000 * v, 2) for k, v in res.timings.items()}
                except ApiError as exc:
                    answer = {"source": "stream", "frame": index, **exc.body(rid)}
                    if exc.status == 422 or exc.status >= 500:  # the options, not the frame: nothing later can work
                        await ws.send_text(json.dumps(answer))
                        await ws.close(WS_POLICY, exc.code)
                        break
                done = time.perf_counter()
                if t_prev is not None:
                    inst = 1.0 / max(done - t_prev, 1e-6)
                    rate = inst if rate is None else 0.8 * rate + 0.2 * inst
                t_prev = done
                answered += 1
                answer.update(fps=None if rate is None else round(rate, 2), dropped=dropped, received=received, latency_ms=round(1000 * (done - now), 2))
                if ws.client_state is not WebSocketState.CONNECTED:
                    break
                await ws.send_text(json.dumps(jsonable(answer), separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-send
        finally:
            task.cancel()
            ws.scope["state"]["log"].update(frames_received=received, frames_answered=answered, frames_dropped=dropped)

    return app


def _stream_options(q) -> dict[str, Any]:
    """The WebSocket's query options, parsed and checked as /v1/predict's are."""
    out: dict[str, Any] = {k: q.get(k) for k in ("model", "detector", "landmarker", "pose", "keypoints")}
    for name, lo, hi in (("min_score", 0.0, 1.0), ("fov", 1.0, 179.0)):
        raw = q.get(name)
        if raw is None:
            out[name] = None
            continue
        try:
            v = float(raw)
        except ValueError:
            raise ApiError(422, "invalid_option", f"{name}: not a number (got {raw!r})") from None
        if not lo <= v <= hi:
            raise ApiError(422, "invalid_option", f"{name}: must be in [{lo:g}, {hi:g}] (got {raw!r})")
        out[name] = v
    for name, default in (("smooth", str(STREAM.smooth).lower()), ("mirror", None)):
        raw = q.get(name)
        value = (raw or default or "").lower()
        if not value:
            out[name] = None  # mirror: the server's
            continue
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise ApiError(422, "invalid_option", f"{name}: true or false (got {raw!r})")
        out[name] = value in ("true", "1", "yes")
    return out


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("openheadpose")
    except metadata.PackageNotFoundError:
        return "0"


def app_from_env() -> FastAPI:
    """The app of one ``headpose serve --workers N`` process: its config comes in :data:`~openheadpose.serve.config.CONFIG_ENV`."""
    text = os.environ.get(CONFIG_ENV)
    return create_app(ServeConfig.from_json(text) if text else None)
