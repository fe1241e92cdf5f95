"""Scale-out: run ``headpose predict`` over many machines with Ray, with the local engine's records.

* :mod:`~openheadpose.scale.units`: the work plan -- sources split into units (a block of
  images, or a frame range of a video with a warm-up before it), and the stitching that
  makes a split video's track ids the ones one machine gives;
* :mod:`~openheadpose.scale.shards`: one Parquet shard per unit, written atomically, read
  back in the local engine's order;
* :mod:`~openheadpose.scale.ray_engine`: :func:`run_ray`, the Ray Data pipeline (an actor pool
  that loads the models once per actor) and the merge into JSON Lines.

Ray and pyarrow are the ``ray`` extra (``pip install "openheadpose[ray]"``); nothing here
imports them until it runs.
"""

from openheadpose.scale.ray_engine import RayRun, have_ray, run_ray

__all__ = ["RayRun", "have_ray", "run_ray"]
