"""openheadpose: find every head in a picture or video and say which way it is turned.

>>> from openheadpose import HeadPoseEstimator          # doctest: +SKIP
>>> heads = HeadPoseEstimator()(image_rgb)               # doctest: +SKIP
>>> heads.euler.yaw                                      # doctest: +SKIP
"""

from openheadpose.inference.results import Detections, FrameResult, Heads

__version__ = "0.1.0"

__all__ = ["HeadPoseEstimator", "Heads", "Detections", "FrameResult", "__version__"]


def __getattr__(name):  # lazy: importing the package must not load the models
    if name == "HeadPoseEstimator":
        from openheadpose.inference.pipeline import HeadPoseEstimator

        return HeadPoseEstimator
    raise AttributeError(name)
