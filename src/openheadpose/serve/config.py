"""What a server is started with: its default models and its limits.

One frozen dataclass, so ``headpose serve --workers N`` can hand the same settings to
every worker process (as JSON in an environment variable) and tests can build an app
with tight limits.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

#: Environment variable holding the API key when ``--api-key`` is not given.
API_KEY_ENV = "OPENHEADPOSE_API_KEY"

#: Environment variable that carries a :class:`ServeConfig` (JSON) to uvicorn's worker processes.
CONFIG_ENV = "OPENHEADPOSE_SERVE_CONFIG"


def default_concurrency() -> int:
    """Inferences run at once by default: the usable cores, at most 4 (each model already uses several threads)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, n))


@dataclass(frozen=True)
class ServeConfig:
    """A server's models and limits.

    Attributes:
        model, weights, detector, landmarker, pose, keypoints, min_score, fov, mirror: the default
            estimator, as ``headpose predict``'s options (``weights`` is a path the *server*
            was started with; requests can never name a file).
        max_concurrency: inferences running at once (threads of the inference pool).
        queue: requests allowed to wait for a free inference slot; one more gets 503 with
            ``Retry-After``.
        timeout_s: seconds a request may take, waiting included, before it gets 504.
        max_body_bytes: largest request body (and WebSocket frame) accepted.
        max_pixels: largest image (width x height) accepted, checked from its header
            before it is decoded (decompression bombs).
        max_streams: WebSocket streams open at once.
        cache_size: estimators kept for distinct option sets (least recently used dropped).
        api_key: when set, every ``/v1/`` request must carry it (``X-API-Key`` header,
            or ``?key=`` on the WebSocket, where browsers cannot set headers).
    """

    model: str = "default"
    weights: str | None = None
    detector: str | None = None
    landmarker: str | None = None
    pose: str | None = None
    keypoints: str | None = None
    min_score: float | None = None
    fov: float | None = None
    mirror: bool | None = None
    max_concurrency: int = dataclasses.field(default_factory=default_concurrency)
    queue: int = 32
    timeout_s: float = 30.0
    max_body_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    max_streams: int = 16
    cache_size: int = 4
    api_key: str | None = None

    def __post_init__(self):
        for name in ("max_concurrency", "max_body_bytes", "max_pixels", "max_streams", "cache_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.queue < 0:
            raise ValueError(f"queue must be >= 0, got {self.queue}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def estimator_options(self) -> dict:
        """The default estimator's options, as :func:`~openheadpose.inference.builder.build_estimator` names them."""
        return {k: getattr(self, k) for k in ("model", "detector", "landmarker", "pose", "keypoints", "min_score", "fov", "mirror")}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @staticmethod
    def from_json(text: str) -> ServeConfig:
        return ServeConfig(**json.loads(text))
