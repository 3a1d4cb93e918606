"""Rows of an arrays directory as a random-access training source.

An arrays directory holds examples in the dataset's physical units, one
memory-mapped `.npy` per field plus `meta.json` (its fields and how many rows
are real training examples and generated copies); rsjax's augmentation
experiment writes one with generated images (`rsjax.eval.experiments.generated`).
`config.data.train_arrays` (`rsjax.data.pipeline`) trains on it, and
`config.data.train_rows` (a `.npy` of row indices, local or a `gs://` URI)
picks e.g. a subset and its generated copies. The pipeline normalizes and
augments its rows like any other source.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence

import numpy as np

from rsjax.store import paths

META = "meta.json"


def _load(path: str | os.PathLike) -> np.ndarray:
  """A `.npy` file, local or on object storage (`rsjax.store.paths`)."""
  if paths.is_remote(path):
    return np.load(io.BytesIO(paths.of(path).read_bytes()))
  return np.load(path)


class ArraySource:
  """Rows of an arrays directory, indexable like `tfds.data_source`."""

  def __init__(self, directory: str, *, rows: str | np.ndarray | None = None,
               fields: Sequence[str] | None = None):
    self.directory = os.fspath(directory)
    meta_path = os.path.join(self.directory, META)
    if not os.path.exists(meta_path):
      raise FileNotFoundError(
          f"config.data.train_arrays: {self.directory!r} is not a complete "
          f"arrays directory (no {META}); write it with "
          f"rsjax.eval.experiments.generated.write_generated")
    with open(meta_path) as f:
      self.meta = json.load(f)
    fields = tuple(fields or self.meta["fields"])
    missing = sorted(set(fields) - set(self.meta["fields"]))
    if missing:
      raise KeyError(f"config.data.fields {missing} are not in the arrays "
                     f"directory {self.directory!r} (it has "
                     f"{self.meta['fields']})")
    self.fields = fields
    self._arrays = {name: np.load(os.path.join(self.directory, f"{name}.npy"),
                                  mmap_mode="r") for name in fields}
    total = len(next(iter(self._arrays.values())))
    if rows is None:
      self.rows = np.arange(total)
    else:
      self.rows = np.asarray(_load(rows) if isinstance(rows, (str, os.PathLike))
                             else rows, np.int64)
      if self.rows.ndim != 1 or not len(self.rows) or (
          self.rows.min() < 0 or self.rows.max() >= total):
        raise ValueError(f"config.data.train_rows {rows!r}: expected a "
                         f"non-empty 1-D array of row indices in [0, {total})")

  def __len__(self) -> int:
    return len(self.rows)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} rows")
    row = self.rows[index]
    return {name: np.asarray(a[row]) for name, a in self._arrays.items()}

  def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
    return [self[int(i)] for i in indices]

  def take(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
    """A batch (stacked fields) of the given indices."""
    rows = self.rows[np.asarray(indices, np.int64)]
    order = np.argsort(rows)  # memory maps read fastest in row order
    inverse = np.argsort(order)
    return {name: np.asarray(a[rows[order]])[inverse]
            for name, a in self._arrays.items()}
