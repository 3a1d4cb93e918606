"""Plots of the augmentation experiment (PNG, matplotlib Agg, atomic writes).

`class_change_bars`: per-class IoU change (Mix - True) as grouped bars, one
group per class and one bar per training-subset size (CSEBGAN Fig. 9).
`metric_curves`: a validation metric against the training step, one line per
run (RS-SPADE paper Fig. 8, "IoU change speed"), read from the runs'
`metrics.jsonl`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(figure, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temporary = f"{path}.tmp"
  figure.savefig(temporary, format="png", dpi=120, bbox_inches="tight")
  os.replace(temporary, path)


def read_curve(metrics_file: str, key: str) -> tuple[np.ndarray, np.ndarray]:
  """(steps, values) of every `key` entry of a run's metrics.jsonl."""
  steps, values = [], []
  with open(metrics_file) as f:
    for line in f:
      row = json.loads(line)
      if key in row and "step" in row:
        steps.append(row["step"])
        values.append(row[key])
  return np.asarray(steps, np.int64), np.asarray(values, np.float64)


def class_change_bars(path: str, class_names: Sequence[str],
                      changes: Mapping[str, Sequence[float]], *,
                      title: str, ylabel: str = "IoU change (Mix - True)"
                      ) -> None:
  """Grouped bars: `changes[label][k]` for class k; NaN bars are left out."""
  plt = _pyplot()
  figure, axes = plt.subplots(figsize=(1.0 + 0.9 * len(class_names), 4.0))
  width = 0.8 / max(len(changes), 1)
  x = np.arange(len(class_names))
  for i, (label, values) in enumerate(changes.items()):
    values = np.asarray(values, np.float64)
    shown = np.isfinite(values)
    axes.bar(x[shown] + (i - (len(changes) - 1) / 2) * width, values[shown],
             width, label=label)
  axes.axhline(0.0, color="black", linewidth=0.8)
  axes.set_xticks(x, class_names, rotation=30, ha="right")
  axes.set_ylabel(ylabel)
  axes.set_title(title)
  axes.legend(fontsize="small")
  _save(figure, path)
  plt.close(figure)


def metric_curves(path: str, curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                  *, title: str, ylabel: str) -> None:
  """One line per curve label; labels starting with 'True' are dashed."""
  plt = _pyplot()
  figure, axes = plt.subplots(figsize=(6.5, 4.0))
  colors = {}
  for label, (steps, values) in curves.items():
    group = label.split(" ", 1)[-1]
    color = colors.setdefault(group, f"C{len(colors)}")
    axes.plot(steps, values, marker="o", markersize=3, color=color,
              linestyle="--" if label.startswith("True") else "-", label=label)
  axes.set_xlabel("training step")
  axes.set_ylabel(ylabel)
  axes.set_title(title)
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  _save(figure, path)
  plt.close(figure)
