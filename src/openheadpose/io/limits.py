"""The one pixel-count guard every entry point shares: an image's size is read from its header and
checked before a single pixel is decoded.

A PNG of a few hundred kilobytes can declare 30000 x 30000 pixels (a *decompression bomb*): decoding
it takes gigabytes. :func:`check_image_header` reads only the header (Pillow's image plugins parse
the header when opened and decode nothing until asked) and refuses an image whose width x height is
over the limit, with :func:`over_limit_message`'s words -- the same in ``headpose predict``, the
Python API (:func:`openheadpose.io.read_image`, ``HeadPoseEstimator.stream``) and the service's 413.
Videos are checked the same way from their container's frame size (:func:`check_frame_size`).

The limit: :data:`DEFAULT_MAX_PIXELS` (100 megapixels: a 12000 x 9000 JPEG already peaks near
1.2 GB while decoded), raised or lowered by ``OPENHEADPOSE_MAX_PIXELS`` (read at each check) or by
:func:`set_max_pixels` (``headpose predict --max-pixels``), which wins over the variable.

>>> parse_pixels("100M"), parse_pixels("250000000"), parse_pixels("1.5e8")
(100000000, 250000000, 150000000)
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from openheadpose.io.errors import InputError

#: The limit when neither ``--max-pixels`` nor ``OPENHEADPOSE_MAX_PIXELS`` says otherwise.
DEFAULT_MAX_PIXELS = 100_000_000

#: Environment variable that sets the limit (pixels; ``250M`` for megapixels).
MAX_PIXELS_ENV = "OPENHEADPOSE_MAX_PIXELS"

#: Pillow's names of the formats read (those of :data:`openheadpose.io.images.IMAGE_EXTS`).
HEADER_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")

_override: int | None = None


def parse_pixels(text: str | int) -> int:
    """A pixel count as typed: ``250000000``, ``1.5e8`` or ``250M`` (megapixels).

    Raises:
        ValueError: not a positive number.
    """
    s = str(text).strip()
    scale = 1_000_000 if s[-1:] in ("M", "m") else 1
    try:
        value = float(s[:-1] if scale > 1 else s) * scale
    except ValueError:
        raise ValueError(f"not a pixel count: {text!r} (write e.g. 250000000 or 250M)") from None
    if not value >= 1 or value != value:
        raise ValueError(f"a pixel limit must be at least 1, got {text!r}")
    return int(round(value))


def set_max_pixels(limit: int | str | None) -> None:
    """Set the limit for this process (``None``: back to ``OPENHEADPOSE_MAX_PIXELS`` or the default)."""
    global _override
    _override = None if limit is None else parse_pixels(limit)


def max_pixels() -> int:
    """The limit now in force: :func:`set_max_pixels`'s, else ``OPENHEADPOSE_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        ValueError: ``OPENHEADPOSE_MAX_PIXELS`` is not a pixel count.
    """
    if _override is not None:
        return _override
    env = os.environ.get(MAX_PIXELS_ENV)
    if env:
        try:
            return parse_pixels(env)
        except ValueError as exc:
            raise ValueError(f"{MAX_PIXELS_ENV}: {exc}") from None
    return DEFAULT_MAX_PIXELS


def _mp(n: float) -> str:
    """Megapixels, short: ``900``, ``1.2``; below one megapixel every digit (a limit of 1000 pixels is not 0).

    >>> _mp(900_000_000), _mp(1_234_567), _mp(1000)
    ('900', '1.2', '0.001')
    """
    return f"{n / 1e6:.{1 if n >= 1e6 else 6}f}".rstrip("0").rstrip(".")


def over_limit_message(name: object, width: int, height: int, limit: int) -> str:
    """The words every entry point uses for an image over the pixel limit.

    >>> over_limit_message("bomb.png", 30000, 30000, 100_000_000)
    'bomb.png: 30000x30000 pixels (900 megapixels) is over the limit of 100 megapixels (a decompression bomb, or a photo to downscale first); the limit is raised by --max-pixels or OPENHEADPOSE_MAX_PIXELS (headpose serve: --max-megapixels)'
    """
    return (f"{name}: {width}x{height} pixels ({_mp(width * height)} megapixels) is over the limit of {_mp(limit)} megapixels "
            f"(a decompression bomb, or a photo to downscale first); the limit is raised by --max-pixels or {MAX_PIXELS_ENV} "
            "(headpose serve: --max-megapixels)")


class TooManyPixels(InputError):
    """An image (or video frame) over the pixel limit; ``size`` is its ``(width, height)``."""

    def __init__(self, message: str, size: tuple[int, int], limit: int):
        super().__init__(message)
        self.size, self.limit = size, limit


def open_header(fp: BinaryIO, name: object = "image"):
    """A Pillow image of ``fp`` with only its header read (``.format``, ``.size``; ``.load()`` decodes).

    Pillow's format plugins are opened directly, not through ``Image.open``, so that Pillow's own
    decompression-bomb ceiling (which raises above 179 megapixels, in its own words) leaves the
    decision to :func:`check_pixels`.

    Raises:
        InputError: no JPEG, PNG, BMP, TIFF or WebP header in the first bytes, or one that does not parse.
    """
    from PIL import Image

    Image.init()
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in HEADER_FORMATS:
        if fmt not in Image.OPEN:  # a Pillow built without that codec (WebP)
            continue
        factory, accept = Image.OPEN[fmt]
        if accept is not None and accept(prefix) is not True:
            continue
        fp.seek(0)
        try:
            return factory(fp, str(name))
        except (SyntaxError, OSError, ValueError, IndexError, TypeError, EOFError) as exc:
            raise InputError(f"{name}: not a readable image (its {fmt} header does not parse: {exc})") from None
    raise InputError(f"{name}: not a readable image (no JPEG, PNG, BMP, TIFF or WebP header in its first bytes)")


def read_header(fp: BinaryIO, name: object = "image") -> tuple[str, int, int]:
    """``(format, width, height)`` of an image from its header alone (nothing is decoded; :func:`open_header`).

    Raises:
        InputError: as :func:`open_header`.
    """
    try:
        im = open_header(fp, name)
    except InputError:
        # Pillow refuses a PNG whose ancillary chunks fail their checksum (libpng, and so OpenCV, only
        # warns and decodes it): its size is still where the format puts it, in the IHDR chunk that
        # must come first.
        fp.seek(0)
        head = fp.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return "PNG", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        raise
    try:
        width, height = im.size
        return im.format, int(width), int(height)
    finally:
        im.close()


def check_image_header(data: bytes | BinaryIO, name: object = "image", limit: int | None = None) -> tuple[str, int, int]:
    """Read an image's header and refuse it when width x height is over ``limit`` (default :func:`max_pixels`).

    Returns:
        ``(format, width, height)``, Pillow's format name.

    Raises:
        TooManyPixels: over the limit (the message: :func:`over_limit_message`).
        InputError: not an image (:func:`read_header`).
    """
    fp = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    fmt, width, height = read_header(fp, name)
    check_pixels(name, width, height, limit)
    return fmt, width, height


def check_pixels(name: object, width: int, height: int, limit: int | None = None) -> None:
    """Refuse a ``width`` x ``height`` image or frame over ``limit`` (default :func:`max_pixels`).

    Raises:
        TooManyPixels: with :func:`over_limit_message`'s words.
    """
    limit = max_pixels() if limit is None else limit
    if width * height > limit:
        raise TooManyPixels(over_limit_message(name, width, height, limit), (width, height), limit)
