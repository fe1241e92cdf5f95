"""``headpose serve``: head pose over HTTP and WebSocket, with a browser page.

* :mod:`~openheadpose.serve.app`: :func:`~openheadpose.serve.app.create_app`, the FastAPI
  application (``POST /v1/predict``, ``POST /v1/interact``, ``WebSocket /v1/stream``,
  ``/healthz``, ``/readyz``, the page at ``/``);
* :mod:`~openheadpose.serve.config`: :class:`~openheadpose.serve.config.ServeConfig`, the
  server's models and limits;
* :mod:`~openheadpose.serve.engine`: models loaded once per process, a bounded inference
  pool with a bounded wait queue (503 + ``Retry-After`` when full) and per-request timeouts;
* :mod:`~openheadpose.serve.images`: uploaded bytes to an RGB image, with the pixel count
  checked from the header before anything is decoded;
* ``static/``: the page (plain HTML, JavaScript and CSS; nothing fetched from elsewhere).

FastAPI and uvicorn are the ``serve`` extra (``pip install "openheadpose[serve]"``); nothing
here is imported by ``import openheadpose``.
"""
