"""Reading inputs and writing outputs.

* :mod:`~openheadpose.io.images`: decode one image file (any depth, EXIF-rotated) into ``(H, W, 3)`` uint8 RGB;
* :mod:`~openheadpose.io.limits`: the one pixel-count guard (the header is read before decoding);
* :mod:`~openheadpose.io.sources`: turn what a user typed (files, folders, globs, videos, cameras,
  ``example:NAME``) into :class:`Source` objects that stream :class:`Frame` objects;
* :mod:`~openheadpose.io.writers`: atomic outputs (JSON Lines, CSV, images, videos) that never leave a
  half-written file at the final path.

>>> [(s.name, s.kind) for s in expand_sources("example:astronaut")]
[('example:astronaut', 'example')]
"""

from openheadpose.io.images import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    InputError,
    OutputError,
    as_rgb_uint8,
    read_image,
    to_uint8,
)
from openheadpose.io.limits import (
    DEFAULT_MAX_PIXELS,
    TooManyPixels,
    check_image_header,
    max_pixels,
    set_max_pixels,
)
from openheadpose.io.sources import (
    EXAMPLES,
    Frame,
    Source,
    count_frames,
    expand_sources,
)
from openheadpose.io.writers import (
    CsvWriter,
    JsonLinesWriter,
    VideoWriter,
    atomic_write_bytes,
    atomic_write_image,
)

__all__ = [
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "EXAMPLES",
    "InputError",
    "OutputError",
    "Frame",
    "Source",
    "as_rgb_uint8",
    "read_image",
    "to_uint8",
    "DEFAULT_MAX_PIXELS",
    "TooManyPixels",
    "check_image_header",
    "max_pixels",
    "set_max_pixels",
    "expand_sources",
    "count_frames",
    "atomic_write_bytes",
    "atomic_write_image",
    "JsonLinesWriter",
    "CsvWriter",
    "VideoWriter",
]
