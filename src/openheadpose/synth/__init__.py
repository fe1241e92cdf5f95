"""Face profiling: turning real face photos with sparse landmarks into a pose-labelled training set.

* :mod:`.fit` fits the Basel Face Model (:mod:`openheadpose.synth.bfm`) to a photo's landmarks;
* :mod:`.render` turns the photo into a 2.5D scene (the fitted face, a head
  around it, the background behind) and re-renders it at new poses;
* :mod:`.build` runs both over a dataset and writes the 300W-LP layout (``headpose synth``).
"""
