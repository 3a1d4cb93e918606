"""An in-memory random-access source of multi-source examples (no TensorFlow).

`MemorySource` holds `num_examples` random examples with the field layout,
dtypes and physical value ranges of the rs_multisource dataset (reflectance in
[0, 0.6], dB inside the default SAR clip ranges, LULC classes 0..8, elevation /
slope / aspect / hillshade in their units, masks 0/1 or 0/1/2), generated with
numpy from a seed: example i depends only on (seed, i). The examples are tiles
of one row, side by side from west to east (`tile_row` 0, `tile_col` i) on a
10 m grid of UTM zone 33N (EPSG:32633) whose origin is (500000, 4500000).

It is a random-access source like `tfds.data_source` (`len`, `__getitem__`,
`__getitems__`), so `rsjax.data.pipeline` serves it through exactly the code
path of an ArrayRecord dataset: same batching, normalization, augmentation,
sharding and resume. Use it for benchmarks and on machines with only JAX
(config `source='memory'`). Memory: about 42 bytes per pixel for the default
fields, so 64 tiles of 256 x 256 take 176 MB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsjax.data import fields as fields_lib
from rsjax.geo import sar

S2_MAX = 0.6
# Upper end of each DEM channel's values (all start at 0), in its units.
DEM_MAX = {"elevation": 2500.0, "slope": 60.0, "aspect": 360.0,
           "hillshade": 1.0}


def random_example(seed: int, index: int, tile_size: int,
                   names: Sequence[str]) -> dict[str, np.ndarray]:
  """Example `index` of the random dataset of `seed`, in physical units.

  Rasters are drawn by their declared kind (`rsjax.data.fields`): optical
  reflectance in [0, S2_MAX], SAR dB inside the default clip range of each
  polarization, classes 0..K-1 of the field's class table, the DEM's
  channels in their units; `valid` is all ones.
  """
  rng = np.random.default_rng([seed, index])
  t = tile_size
  example = {}
  for name in names:
    shape, dtype = fields_lib.spec(name, t)
    declared = fields_lib.field(name)
    if declared.kind == "optical":
      value = rng.random(shape, dtype=np.float32) * S2_MAX
    elif declared.kind == "sar":
      low, high = (np.array(side, np.float32) for side in zip(
          *sar.db_ranges(declared.bands)))
      value = low + rng.random(shape, dtype=np.float32) * (high - low)
    elif declared.kind == "elevation":
      unit = rng.random(shape, dtype=np.float32)
      scale = np.array([DEM_MAX[band] for band in declared.bands], np.float32)
      value = unit * scale
      aspect = declared.bands.index("aspect")
      value[..., aspect] = np.minimum(value[..., aspect], np.float32(359.99))
    elif name == "valid":
      value = np.ones(shape, np.uint8)
    elif declared.kind in ("categorical", "mask"):
      value = rng.integers(0, len(declared.classes), shape, np.uint8)
    elif name == "scene_id":
      value = np.array(f"memory_{seed}_{index}".encode(), dtype=object)
    elif name == "crs":
      value = np.array(b"EPSG:32633", dtype=object)
    elif name == "transform":
      value = np.array([10.0, 0.0, 500000.0 + 10.0 * t * index, 0.0, -10.0,
                        4500000.0], np.float64)
    elif name in ("tile_row", "tile_col"):
      value = np.int32(index if name == "tile_col" else 0)
    else:  # pragma: no cover - a newly declared field needs a generator here
      raise KeyError(name)
    example[name] = np.asarray(value, dtype)
  return example


class MemorySource:
  """`num_examples` random examples held in memory, indexable like a list."""

  def __init__(self, num_examples: int, *, tile_size: int = 256,
               fields: Sequence[str] = fields_lib.DEFAULT_FIELDS,
               seed: int = 0):
    if num_examples < 1:
      raise ValueError(f"memory source: num_examples must be >= 1, got "
                       f"{num_examples}.")
    for name in fields:
      fields_lib.spec(name, tile_size)  # clear error on unknown names
    self.tile_size = tile_size
    self.fields = tuple(fields)
    self.seed = seed
    examples = [random_example(seed, i, tile_size, self.fields)
                for i in range(num_examples)]
    self._arrays = {name: np.stack([e[name] for e in examples])
                    for name in self.fields}

  def __len__(self) -> int:
    return len(next(iter(self._arrays.values())))

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} examples")
    return {name: a[index] for name, a in self._arrays.items()}

  def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
    return [self[int(i)] for i in indices]

  def take(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
    """A batch (stacked fields) of the given indices, in one gather."""
    indices = np.asarray(indices, np.int64)
    return {name: a[indices] for name, a in self._arrays.items()}
