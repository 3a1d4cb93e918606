"""Report figures (matplotlib, Agg canvas): sample grids and training curves.

Sample grids draw a system's display panels (`System.panels`: inputs,
prediction and target as RGB/NRG composites, SAR as grey VV dB, land cover in
the Dynamic World palette of `rsjax.data.fields`), one row per example and
a column per panel, with a legend of the Dynamic World classes when a panel
shows land cover. Training curves read `<workdir>/metrics.jsonl` (written by
`rsjax.train.writers`) and overlay several runs: one subplot per train loss
and per validation score, against the step.

Figures are drawn on matplotlib's object-oriented `Figure` (no pyplot, no
global backend switch) and written to a temporary name, then renamed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from rsjax.data import fields as fields_lib
from rsjax.eval.report import tables
from rsjax.store import atomic
from rsjax.store import paths

# Logged scalars that are bookkeeping rather than curves worth plotting.
_SKIPPED = ("steps_per_sec", "uptime", "train/loss_is_finite")


# ----------------------------------------------------------- sample grids --

def is_land_cover_panel(image) -> bool:
  """True if every pixel is a Dynamic World palette colour (or the black of
  ignored pixels), and at least one is a palette colour."""
  pixels = np.asarray(image, np.float32).reshape(-1, 3)
  palette = fields_lib.palette("lulc")
  distance = np.abs(pixels[:, None, :] - palette[None]).max(-1).min(-1)
  black = np.abs(pixels).max(-1) < 1e-6
  on_palette = distance < 1e-6
  return bool(np.all(on_palette | black) and np.any(on_palette))


def _save(figure: Figure, path: str) -> str:
  with atomic.atomic_path(path) as temporary:
    figure.savefig(temporary, format="png", dpi=figure.dpi)
  return path


def sample_figure(panels: Mapping[str, np.ndarray], *, max_rows: int = 4,
                  title: str | None = None,
                  class_names: Sequence[str] = tables.CLASS_NAMES) -> Figure:
  """Panels {name: (B, H, W, 3) in [0, 1]} as a grid figure."""
  if not panels:
    raise ValueError("no panels to draw")
  names = list(panels)
  images = {n: np.clip(np.asarray(panels[n], np.float32), 0, 1) for n in names}
  shape = images[names[0]].shape
  for name in names:
    if images[name].ndim != 4 or images[name].shape[-1] != 3 or \
        images[name].shape[:3] != shape[:3]:
      raise ValueError(f"panel {name!r} has shape {images[name].shape}; every "
                       f"panel must be (B, H, W, 3) like {shape}")
  rows = min(max_rows, shape[0])
  land_cover = [n for n in names if is_land_cover_panel(images[n][:rows])]
  legend_height = 0.5 if land_cover else 0.0
  title_height = 0.3 + (0.3 if title else 0.0)
  size = 1.8
  figure = Figure(figsize=(size * len(names),
                           size * rows + title_height + legend_height), dpi=100)
  axes = figure.subplots(rows, len(names), squeeze=False)
  for column, name in enumerate(names):
    for row in range(rows):
      axis = axes[row, column]
      axis.imshow(images[name][row], interpolation="nearest")
      axis.set_xticks([])
      axis.set_yticks([])
      if row == 0:
        axis.set_title(name, fontsize=9)
  if land_cover:
    colours = fields_lib.palette("lulc")
    handles = [Patch(facecolor=colours[k], edgecolor="none",
                     label=class_names[k].replace("_", " "))
               for k in range(min(len(colours), len(class_names)))]
    figure.legend(handles=handles, loc="lower center", ncol=min(
        len(handles), max(3, len(names) * 2)), fontsize=7, frameon=False)
  height = figure.get_figheight()
  if title:
    figure.suptitle(title, fontsize=10, y=1 - 0.05 / height, va="top")
  figure.subplots_adjust(left=0.01, right=0.99,
                         bottom=legend_height / height + 0.01,
                         top=1 - title_height / height,
                         wspace=0.04, hspace=0.04)
  return figure


def save_samples(path: str, panels: Mapping[str, np.ndarray], **kwargs) -> str:
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
