"""After training: reports, full-scene inference and experiments.

  report/       metric tables of trained workdirs (Markdown, CSV, JSON), sample
                grids and training curves (`launch/evaluate.py`).
  inference/    a trained generator over a whole scene, window by window,
                written as a georeferenced Cloud-Optimized GeoTIFF
                (`launch/infer.py`).
  experiments/  studies built from several runs: the augmentation experiment
                (segmentation on real vs real + generated tiles) and the
                fusion study of the segmenters (`launch/experiment.py`).
"""
