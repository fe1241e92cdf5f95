"""``headpose serve``: the HTTP and WebSocket service with its browser page (:mod:`openheadpose.serve`).

FastAPI and uvicorn are the ``serve`` extra; they are imported when the command runs.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import click

from openheadpose.cli._common import (
    CONTEXT,
    KEYPOINTS_HELP,
    build_or_exit,
    err,
    estimator_options,
    fail,
    mirror_option,
    message,
    onnx_weights,
)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind. Anything but loopback needs --api-key (or --insecure).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to bind.")
@estimator_options(KEYPOINTS_HELP)
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="Default minimum head score. [default: as in `headpose predict`]")
@click.option("--fov", type=click.FloatRange(1, 179), default=None, help="Default horizontal field of view, degrees (rotations in the camera frame).")
@mirror_option
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes (each loads the models once).")
@click.option("--max-concurrency", type=click.IntRange(1, 64), default=None, help="Inferences run at once per worker. [default: usable cores, at most 4]")
@click.option("--queue", "queue_len", type=click.IntRange(0, 10_000), default=32, show_default=True, help="Requests that may wait for an inference per worker; beyond, 503 with Retry-After.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True, help="Seconds a request may take, waiting included, before 504.")
@click.option("--max-body-mb", type=click.FloatRange(0.01, 1024), default=20.0, show_default=True, help="Largest request body or WebSocket frame, MB.")
@click.option("--max-megapixels", type=click.FloatRange(0.01, 1000), default=40.0, show_default=True, help="Largest image accepted (width x height), checked before decoding.")
@click.option("--max-streams", type=click.IntRange(1, 10_000), default=16, show_default=True, help="WebSocket streams open at once per worker.")
@click.option("--api-key", envvar="OPENHEADPOSE_API_KEY", default=None, help="Key every /v1/ request must carry (X-API-Key header; ?key= on the WebSocket). [env: OPENHEADPOSE_API_KEY]")
@click.option("--insecure", is_flag=True, help="Allow binding a non-loopback address without an API key.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True, help="JSON log lines on standard error at this level.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One JSON line per request (request id, method, path, status, bytes, ms).")
def serve(host, port, model_name, weights, keypoint_source, detector, landmarker, pose_name, min_score, fov, mirror, workers, max_concurrency, queue_len, timeout_s,
          max_body_mb, max_megapixels, max_streams, api_key, insecure, log_level, access_log) -> None:  # fmt: skip
    """Serve head pose over HTTP and WebSocket, with a page for photos and the webcam.

    \b
    Open http://HOST:PORT/ in a browser: pick a photo or use the webcam; heads are
    drawn with their box, axes, angles, sigma and track id.

    \b
    Endpoints (JSON; errors are {"error": {"code", "message", "request_id"}}):
      POST /v1/predict      an image (raw bytes or multipart 'file') -> the record of
                            `headpose predict --json`; ?model=&detector=&min_score=&fov=
      POST /v1/interact     an image -> the record of `headpose interact --json`
      WS   /v1/stream       JPEG frames in, tracked heads out (one tracker per connection;
                            stale frames are dropped and counted)
      GET  /healthz, /readyz, /v1/info, /docs (OpenAPI)

    \b
    Examples:
      headpose serve                                   # http://127.0.0.1:8000/
      curl --data-binary @photo.jpg http://127.0.0.1:8000/v1/predict
      curl -F file=@group.jpg 'http://127.0.0.1:8000/v1/interact?depth=plane'
      OPENHEADPOSE_API_KEY=secret headpose serve --host 0.0.0.0 --workers 2
    """
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "websockets") if importlib.util.find_spec(m) is None]
    if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
        missing.append("python-multipart")
    if missing:
        fail(f'headpose serve needs {", ".join(missing)}: pip install "openheadpose[serve]"')
    import uvicorn

    from openheadpose.serve.app import create_app
    from openheadpose.serve.config import CONFIG_ENV, ServeConfig, default_concurrency
    from openheadpose.serve.logs import log_config

    if not is_loopback(host) and not api_key and not insecure:
        fail(f"refusing to serve on {host} without an API key: anyone who can reach it could use it. "
             f"Give --api-key KEY (or OPENHEADPOSE_API_KEY), or --insecure if that is what you want")  # fmt: skip
    weights = onnx_weights(weights)
    try:
        config = ServeConfig(
            model=model_name, weights=None if weights is None else str(Path(weights).resolve()), detector=detector, landmarker=landmarker,
            pose=pose_name, keypoints=keypoint_source, min_score=min_score, fov=fov, mirror=mirror, max_concurrency=max_concurrency or default_concurrency(),
            queue=queue_len, timeout_s=timeout_s, max_body_bytes=int(max_body_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
            max_streams=max_streams, api_key=api_key or None,
        )  # fmt: skip
    except ValueError as exc:
        fail(message(exc))
    # Built here to refuse bad options before binding; one worker keeps it, several build their own.
    est = build_or_exit(model_name, weights, keypoint_source=keypoint_source, detector=detector, landmarker=landmarker, pose_name=pose_name,
                        min_score=min_score, fov=fov, mirror=mirror, track=False)  # fmt: skip
    err(f"serving on http://{'[' + host + ']' if ':' in host else host}:{port}/  ({', '.join(f'{k}: {v}' for k, v in est.names.items())}; "
        f"{workers} worker(s) x {config.max_concurrency} inferences, queue {config.queue}{', API key required' if config.api_key else ''})")  # fmt: skip
    common = {"host": host, "port": port, "log_config": log_config(log_level, access_log), "access_log": False, "ws_max_size": config.max_body_bytes,
              "timeout_graceful_shutdown": 5}  # fmt: skip
    if workers == 1:
        uvicorn.run(create_app(config, estimator=est), **common)
    else:
        del est
        os.environ[CONFIG_ENV] = config.to_json()
        uvicorn.run("openheadpose.serve.app:app_from_env", factory=True, workers=workers, **common)
    sys.exit(0)
