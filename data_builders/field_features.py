"""TFDS features of declared fields: builders store the fields as
`rsjax.data.fields` declares them.

Every builder that writes a field of the declaration (`s2`, `s1`, `lulc`,
`dem`, `valid`, `cloud_mask`, ..., and the metadata `crs`, `transform`,
`tile_row`, ...) takes its TFDS feature from here, so its shape, dtype and
storage encoding come from the one declaration:

  feature(name, tile_size, bands=None, encoding=None)
      a raster field: Tensor (T, T[, C]) of the declared dtype, C the declared
      band count or len(bands) for a dataset with another band set; stored
      with the declared encoding unless `encoding` is given (a published
      dataset keeps the encoding it was built with). Metadata: Text for text,
      Scalar for a number, Tensor for a vector.
  features(names, tile_size, ...)   {name: feature} of several fields.

Features a builder has beyond the declaration (SEN12MS's id and season, the
GID / WHU-OPT-SAR `image` and `label`, SEN1-2's 8-bit PNG images) stay with
that builder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow_datasets as tfds

from rsjax.data import fields as fields_lib


def feature(name: str, tile_size: int | None = None, *,
            bands: Sequence[str] | None = None,
            encoding: str | None = None) -> tfds.features.FeatureConnector:
  """The TFDS feature of field `name` (see the module docstring)."""
  declared = fields_lib.field(name)
  if not declared.spatial:
    if declared.dtype is object:
      return tfds.features.Text()
    if declared.shape == ():
      return tfds.features.Scalar(dtype=declared.dtype)
    return tfds.features.Tensor(shape=declared.shape, dtype=declared.dtype)
  if tile_size is None:
    raise ValueError(f"field {name!r} is a raster: give its tile_size.")
  shape, dtype = fields_lib.spec(name, tile_size, bands)
  return tfds.features.Tensor(shape=shape, dtype=dtype,
                              encoding=encoding or declared.encoding)


def features(names: Sequence[str], tile_size: int | None = None, *,
             bands: Mapping[str, Sequence[str]] | None = None,
             encoding: str | None = None
             ) -> dict[str, tfds.features.FeatureConnector]:
  """{name: feature(name, ...)}, in the order of `names`; `bands` maps a
  field to its band set where the dataset's differs from the declaration."""
  bands = dict(bands or {})
  return {name: feature(name, tile_size, bands=bands.get(name),
                        encoding=encoding) for name in names}
