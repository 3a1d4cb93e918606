"""Plots of the augmentation experiment (PNG, matplotlib Figures, atomic writes).

`class_change_bars`: per-class IoU change (Mix - True) as grouped bars, one
group per class and one bar per training-subset size (CSEBGAN Fig. 9).
`metric_curves`: a validation metric against the training step, one line per
run (RS-SPADE paper Fig. 8, "IoU change speed"), read from the runs'
`metrics.jsonl`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rsjax.eval.report import plots as run_plots
from rsjax.store import atomic


def _save(figure, path: str) -> None:
  with atomic.atomic_path(path) as temporary:
    figure.savefig(temporary, format="png", dpi=120, bbox_inches="tight")


def read_curve(metrics_file: str, key: str) -> tuple[np.ndarray, np.ndarray]:
  """(steps, values) of `key` in a run's metrics.jsonl (empty if never
  logged; a step a resumed run logged twice counts once)."""
  empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))
  return run_plots.read_metrics(metrics_file).get(key, empty)


def class_change_bars(path: str, class_names: Sequence[str],
                      changes: Mapping[str, Sequence[float]], *,
                      title: str, ylabel: str = "IoU change (Mix - True)"
                      ) -> None:
  """Grouped bars: `changes[label][k]` for class k; NaN bars are left out."""
  figure = Figure(figsize=(1.0 + 0.9 * len(class_names), 4.0))
  axes = figure.subplots()
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


def metric_curves(path: str, curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                  *, title: str, ylabel: str) -> None:
  """One line per curve label; labels starting with 'True' are dashed."""
  figure = Figure(figsize=(6.5, 4.0))
  axes = figure.subplots()
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
