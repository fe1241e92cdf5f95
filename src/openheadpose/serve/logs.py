"""Structured logs: one JSON object per line on standard error.

Access lines come from the ``openheadpose.serve.access`` logger with their fields in
``extra={"fields": {...}}`` (request id, method, path without its query, status, bytes,
milliseconds); :class:`JsonFormatter` writes every record, uvicorn's own included, as JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging

ACCESS_LOGGER = "openheadpose.serve.access"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def log_config(level: str = "info", access: bool = True) -> dict:
    """A :func:`logging.config.dictConfig` for uvicorn (applied in every worker process); ``access=False``: no access lines."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "openheadpose.serve": {"handlers": ["stderr"], "level": level, "propagate": False},
            ACCESS_LOGGER: {"level": level if access else "WARNING"},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours replace it
        },
    }
