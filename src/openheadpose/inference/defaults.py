"""What a user gets without options, written once.

``HeadPoseEstimator()``, :func:`~openheadpose.inference.builder.build_estimator`, ``headpose
predict`` / ``interact`` and the service all read :data:`STREAM` (and build their tracker with
:func:`default_tracker`), so the class the README shows first and the command line can never
drift apart (``tests/test_defaults.py``). The tracker's own settings (how often the detector
runs, how long a hidden head is kept, the fusion's noise model) are the defaults of
:class:`~openheadpose.inference.tracking.HeadTracker` and
:mod:`~openheadpose.inference.fusion`; the mirrored read's default is
:data:`~openheadpose.inference.pose_stages.MIRROR_DEFAULT`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamDefaults:
    """How a video or camera stream is read when nobody says otherwise.

    Attributes:
        track: follow heads from frame to frame (identities, the detector only now and then).
        smooth: with ``track``, fuse each head's readings over time (and smooth its box).
    """

    track: bool = True
    smooth: bool = True


#: The defaults every entry point reads.
STREAM = StreamDefaults()


def default_tracker(track: bool = STREAM.track, smooth: bool = STREAM.smooth):
    """The tracker a stream gets: a :class:`~openheadpose.inference.tracking.HeadTracker`, or ``None`` without ``track``."""
    if not track:
        return None
    from openheadpose.inference.tracking import HeadTracker

    return HeadTracker(smooth=smooth)
