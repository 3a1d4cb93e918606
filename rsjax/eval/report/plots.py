"""Report figures (matplotlib, Agg canvas): sample grids and training curves.

Sample grids draw a system's display panels (`System.panels`, each a
`rsjax.systems.base.Panel`: inputs, prediction and target as RGB/NRG
composites, SAR as grey VV dB, land cover in the Dynamic World palette), one
row per real example and a column per panel, as `rsjax.train.samples` does:
the panels' titles (field, bands, stretch) above the columns, the swatches of
their legends (land-cover class names) and their notes (SAR's dB range, the
stretch of composites) below. Training curves read
`<workdir>/metrics.jsonl` (written by `rsjax.train.writers`) and overlay
several runs: one subplot per train loss and per validation score, against
the step.

Figures are drawn on matplotlib's object-oriented `Figure` (no pyplot, no
global backend switch) and written to a temporary name, then renamed.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from rsjax.store import atomic
from rsjax.store import paths
from rsjax.systems import base

# Logged scalars that are bookkeeping rather than curves worth plotting.
_SKIPPED = ("steps_per_sec", "uptime", "train/loss_is_finite")


# ----------------------------------------------------------- sample grids --

_TILE_INCHES = 1.8
_TITLE_CHARS = 28        # characters of 8-point text across a tile
_NOTE_CHARS_PER_INCH = 15


def _save(figure: Figure, path: str) -> str:
  with atomic.atomic_path(path) as temporary:
    figure.savefig(temporary, format="png", dpi=figure.dpi)
  return path


def sample_figure(panels: Mapping[str, base.Panel | np.ndarray], *,
                  max_rows: int = 4, title: str | None = None) -> Figure:
  """Panels ({name: `base.Panel`}, or plain (B, H, W, 3) arrays in [0, 1]
  titled by their name) as a grid figure: the panels' titles above the
  columns, their legend swatches and notes below."""
  columns = base.grid_columns(panels, max_rows)
  rows = columns[0].image.shape[0]
  titles = [textwrap.fill(p.title.replace(" %", "\N{NO-BREAK SPACE}%"),
                           _TITLE_CHARS, break_on_hyphens=False)
            for p in columns]
  legend = base.grid_legend(columns)
  width = _TILE_INCHES * len(columns)
  notes = [textwrap.fill(n, max(40, int(width * _NOTE_CHARS_PER_INCH)))
           for n in base.grid_notes(columns)]
  if not rows:
    notes.append("No examples to show: every row of the batch is padding.")
  # About 0.35 inch of swatch and spacing and 0.055 inch a character of
  # 7-point text per legend entry.
  legend_inches = sum(0.35 + 0.055 * len(label) for label, _ in legend)
  legend_rows = max(1, math.ceil(legend_inches / (0.9 * width)))
  legend_columns = max(1, -(-len(legend) // legend_rows))
  legend_height = (0.22 * -(-len(legend) // legend_columns) + 0.1
                   if legend else 0.0)
  note_lines = sum(n.count("\n") + 1 for n in notes)
  footer = legend_height + 0.13 * note_lines + (0.1 if notes else 0)
  title_height = 0.15 * max(t.count("\n") + 1 for t in titles) + 0.15 + (
      0.3 if title else 0.0)
  figure = Figure(figsize=(width, _TILE_INCHES * max(rows, 1) + title_height
                           + footer), dpi=100)
  height = figure.get_figheight()
  axes = figure.subplots(max(rows, 1), len(columns), squeeze=False)
  for column, panel in enumerate(columns):
    for row in range(max(rows, 1)):
      axis = axes[row, column]
      if row < rows:
        axis.imshow(panel.image[row], interpolation="nearest")
      axis.set_xticks([])
      axis.set_yticks([])
      if row == 0:
        axis.set_title(titles[column], fontsize=8)
  if legend:
    handles = [Patch(facecolor=colour, edgecolor="0.5", linewidth=0.5,
                     label=label) for label, colour in legend]
    figure.legend(handles=handles, loc="lower center", ncol=legend_columns,
                  fontsize=7, frameon=False,
                  bbox_to_anchor=(0.5, (footer - legend_height) / height))
  if notes:
    figure.text(0.01, 0.05 / height, "\n".join(notes), fontsize=7,
                ha="left", va="bottom")
  if title:
    figure.suptitle(title, fontsize=10, y=1 - 0.05 / height, va="top")
  figure.subplots_adjust(left=0.01, right=0.99, bottom=footer / height + 0.01,
                         top=1 - title_height / height, wspace=0.04,
                         hspace=0.04)
  return figure


def save_samples(path: str, panels: Mapping[str, base.Panel | np.ndarray],
                 **kwargs) -> str:
  """Writes `sample_figure(panels)` as a PNG; returns the path."""
  return _save(sample_figure(panels, **kwargs), path)


# -------------------------------------------------------- training curves --

def read_metrics(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{name: (steps, values)} from a metrics.jsonl file; a step logged twice
  (a resumed run repeats steps after its last checkpoint) keeps the last."""
  series: dict[str, dict[int, float]] = {}
  with paths.of(path).open() as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{number}: not a JSON line ({error})") from None
      if "step" not in row:
        continue                      # hparams and other non-scalar rows
      step = int(row["step"])
      for name, value in row.items():
        if name != "step" and isinstance(value, (int, float)):
          series.setdefault(name, {})[step] = float(value)
  return {name: (np.array(sorted(v)), np.array([v[s] for s in sorted(v)]))
          for name, v in series.items()}


def curve_names(runs: Mapping[str, Mapping[str, tuple]], eval_prefix: str,
                eval_keys: Sequence[str] | None = None) -> list[str]:
  """Train losses (train/*) then evaluation scores (`eval_prefix`/key, only
  `eval_keys` when given), over the union of the runs' logged names."""
  names = sorted({n for series in runs.values() for n in series})
  train = [n for n in names if n.startswith("train/") and n not in _SKIPPED]
  prefix = eval_prefix.rstrip("/") + "/"
  scores = [n for n in names if n.startswith(prefix)]
  if eval_keys is not None:
    scores = [prefix + k for k in eval_keys if prefix + k in scores]
  return train + scores


def curves_figure(runs: Mapping[str, Mapping[str, tuple]], names: Sequence[str],
                  *, columns: int = 4) -> Figure:
  """One subplot per metric name, a line per run (label -> series)."""
  if not names:
    raise ValueError("no logged metrics to plot")
  rows = -(-len(names) // columns)
  columns = min(columns, len(names))
  figure = Figure(figsize=(3.2 * columns, 2.4 * rows), dpi=100)
  axes = figure.subplots(rows, columns, squeeze=False).ravel()
  for axis, name in zip(axes, names):
    for label, series in runs.items():
      if name in series:
        steps, values = series[name]
        axis.plot(steps, values, marker="." if len(steps) < 20 else None,
                  label=label)
    axis.set_title(name, fontsize=9)
    axis.set_xlabel("step", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.ticklabel_format(axis="y", useOffset=False)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
  for axis in axes[len(names):]:
    axis.set_visible(False)
  legend = {}
  for axis in axes[:len(names)]:
    for handle, label in zip(*axis.get_legend_handles_labels()):
      legend.setdefault(label, handle)
  figure.legend(list(legend.values()), list(legend), loc="upper center",
                ncol=max(1, min(len(legend), 6)), fontsize=8, frameon=False)
  figure.tight_layout(rect=(0, 0, 1, 1 - 0.3 / figure.get_figheight()))
  return figure


def save_curves(path: str, metrics_files: Mapping[str, str], *,
                eval_prefix: str = "validation",
                eval_keys: Sequence[str] | None = None) -> str:
  """Training curves of several runs ({label: metrics.jsonl path}) as a PNG."""
  runs = {label: read_metrics(file) for label, file in metrics_files.items()}
  return _save(curves_figure(runs, curve_names(runs, eval_prefix, eval_keys)),
               path)
