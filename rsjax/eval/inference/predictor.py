"""A trained generator, restored and checked, as one jitted function on windows.

`load_predictor(workdir, window=..., batch_size=...)` rebuilds the system from
the run's saved config (`rsjax.store.run_config`), checks, before anything
is restored or written, that it is a generator with spatial output that can
take windows of this size, restores the newest checkpoint through
`rsjax.systems.trained.load_run`, and returns a `Predictor`:

    predictor(batch)  # {field: (B, T, T, C) physical units} -> (B, T, T, C')

One jitted function normalizes the inputs with the run's normalization
(`rsjax.data.normalize`), calls the system's `predict`, and turns its output
back into physical units (`OutputSpec`): reflectance for optical outputs
(inverting the normalization of `output_field`, keeping `output_bands`),
class probabilities (softmax of the logits) for land cover. Which fields are
classes or reflectance, and the band names and units written, come from the
field declaration (`rsjax.data.fields`). Batches have one fixed shape, so it
compiles once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax import mesh as mesh_lib
from rsjax.data import field_layout
from rsjax.data import fields as fields_lib
from rsjax.data import normalize as normalize_lib
from rsjax.geo import bands as geo_bands
from rsjax.store import run_config
from rsjax.systems import base
from rsjax.systems import trained

CLASS_FIELDS = fields_lib.fields_of_kind("categorical")
REFLECTANCE_SCALE = geo_bands.S2_DN_PER_REFLECTANCE  # uint16 DN per unit


@dataclasses.dataclass(frozen=True)
class OutputSpec:
  """How a system's prediction becomes raster bands.

  kind: 'reflectance' (uint16 reflectance x 10000, nodata 0), 'classes'
  (uint8 class index of the blended probabilities, nodata 255) or 'physical'
  (float32 in the field's physical units, nodata NaN).
  descriptions, units: per written band, the declared band names and units
  of the field (`rsjax.data.fields`); 'class' for a class index.
  `scales` and `offsets` turn each band's stored values into its units
  (GDAL's band scale and offset: units = stored * scale + offset).
  """
  field: str
  bands: tuple[int, ...] | None
  kind: str
  channels: int           # channels predicted (and blended) per pixel
  descriptions: tuple[str, ...]
  units: tuple[str, ...]

  @property
  def count(self) -> int:
    return 1 if self.kind == "classes" else self.channels

  @property
  def dtype(self) -> str:
    return {"reflectance": "uint16", "classes": "uint8"}.get(self.kind,
                                                            "float32")

  @property
  def nodata(self) -> float:
    return {"reflectance": 0, "classes": 255}.get(self.kind, float("nan"))

  @property
  def scales(self) -> tuple[float, ...]:
    scale = 1.0 / REFLECTANCE_SCALE if self.kind == "reflectance" else 1.0
    return (scale,) * self.count

  @property
  def offsets(self) -> tuple[float, ...]:
    return (0.0,) * self.count

  @property
  def colormap(self) -> dict[int, tuple[int, int, int]] | None:
    """The class colours of a class map (the field's palette), else None."""
    if self.kind != "classes":
      return None
    colours = np.rint(fields_lib.palette(self.field) * 255).astype(int)
    return {index: tuple(map(int, rgb)) for index, rgb in enumerate(colours)}

  @property
  def overview_resampling(self) -> str:
    return "mode" if self.kind == "classes" else "average"

  def encode(self, blended: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(rows, W, channels) physical values + (rows, W) valid -> bands."""
    if self.kind == "classes":
      data = blended.argmax(-1).astype(np.uint8)[None]
    elif self.kind == "reflectance":
      dn = np.rint(np.moveaxis(blended, -1, 0) * REFLECTANCE_SCALE)
      data = np.clip(dn, 1, np.iinfo(np.uint16).max).astype(np.uint16)
    else:
      data = np.moveaxis(blended, -1, 0).astype(np.float32)
    return np.where(valid[None], data, np.asarray(self.nodata, data.dtype))


def output_spec(system, num_classes: int) -> OutputSpec:
  """The OutputSpec of a system's `output_field` / `output_bands`."""
  field = getattr(system, "output_field", None)
  if field not in fields_lib.fields_of_kind("optical", "sar", "categorical",
                                            "elevation"):
    raise ValueError(
        f"system {type(system).__name__} predicts {field!r}, not an image "
        f"field; full-scene inference needs a generator or segmenter with "
        f"spatial output (output_field one of s2, lulc, s1, dem, ...).")
  declared = fields_lib.field(field)
  bands = getattr(system, "output_bands", None)
  bands = None if bands is None else tuple(int(b) for b in bands)
  if field in CLASS_FIELDS:
    return OutputSpec(field, None, "classes", int(num_classes), ("class",),
                      declared.units)
  chosen = bands if bands is not None else tuple(range(declared.channels))
  unknown = [b for b in chosen if not 0 <= b < declared.channels]
  if unknown:
    raise ValueError(
        f"system {type(system).__name__} predicts band(s) {unknown} of "
        f"{field!r}, which has the bands {list(declared.bands)} (output_bands "
        f"are indices 0 .. {declared.channels - 1}).")
  kind = "reflectance" if declared.kind == "optical" else "physical"
  return OutputSpec(field, bands, kind, len(chosen),
                    tuple(declared.bands[b] for b in chosen),
                    tuple(declared.units[b] for b in chosen))


def check_system_fits(system, state_shape, batch, spec: OutputSpec) -> None:
  """ValueError if `predict` cannot take this batch or gives no image.

  Runs the system's `check_batch` (tile-size divisibility) if it has one,
  then traces `predict` abstractly (no compute) and checks its output shape.
  """
  batch_size, window = next(iter(batch.values())).shape[:2]
  try:
    if hasattr(system, "check_batch"):
      system.check_batch(batch)
    out = jax.eval_shape(system.predict, state_shape, batch)
  except (ValueError, TypeError, KeyError) as error:
    raise ValueError(f"--window {window}: the generator cannot take "
                     f"{window}x{window} windows: {error}") from error
  expected = (batch_size, window, window, spec.channels)
  if tuple(out.shape) != expected:
    raise ValueError(
        f"--window {window}: predict gives shape {tuple(out.shape)} for "
        f"{window}x{window} windows, expected {expected} (a generator with "
        f"spatial output of {spec.field!r}); pick a window the generator "
        "keeps the size of.")


class Predictor:
  """Physical inputs -> physical outputs of a system, jitted once."""

  def __init__(self, system, state, *, normalization, spec: OutputSpec,
               batch_sharding=None, step: int | None = None,
               config: Any = None):
    self.system, self.state, self.spec = system, state, spec
    self.fields = tuple(system.predict_fields)
    self.normalization = normalization
    self.batch_sharding = batch_sharding
    self.step, self.config = step, config
    self._jitted = jax.jit(self._physical_prediction)

  def _physical_prediction(self, state, batch):
    if self.normalization is not None:
      batch = normalize_lib.normalize_batch(batch, self.normalization)
    prediction = jnp.asarray(self.system.predict(state, batch), jnp.float32)
    spec = self.spec
    if spec.kind == "classes":
      return jax.nn.softmax(prediction, axis=-1)
    if self.normalization is None:
      return prediction
    if spec.bands is None:
      return normalize_lib.denormalize(spec.field, prediction,
                                       self.normalization)
    width = len(normalize_lib.band_names(spec.field, self.normalization))
    full = jnp.zeros(prediction.shape[:-1] + (width,), prediction.dtype)
    full = full.at[..., list(spec.bands)].set(prediction)
    physical = normalize_lib.denormalize(spec.field, full, self.normalization)
    return physical[..., list(spec.bands)]

  def __call__(self, batch: Mapping[str, np.ndarray]) -> jax.Array:
    """Dispatches one batch (asynchronously); returns the device result."""
    batch = {name: batch[name] for name in self.fields}
    if self.batch_sharding is not None:
      batch = jax.device_put(batch, self.batch_sharding)
    return self._jitted(self.state, batch)


def check_declared_bands(config, names) -> None:
  """Raises for a run trained on other bands than a scene folder holds.

  Scene folders hold each field's declared bands in physical units
  (`rsjax.geo.scene`); a run whose `config.data.bands` picked others (a
  public dataset's 8-bit RGB, a subset) would be fed what it never saw.
  """
  bands_config = (config.get("data") or {}).get("bands")
  for name in names:
    if name is None or name not in fields_lib.FIELDS:
      continue
    f = fields_lib.field(name)
    if not (f.spatial and f.channel_axis):
      continue
    chosen = field_layout.run_bands(bands_config, name)
    if chosen != f.bands:
      raise ValueError(
          f"this run read bands {list(chosen)} of field {name!r} "
          f"(config.data.bands, dataset {config.data.get('name')!r}); "
          f"full-scene inference reads scene folders, which hold "
          f"{list(f.bands)}. Infer with a run trained on the declared "
          "bands (e.g. on rs_multisource).")


def load_predictor(workdir: str | os.PathLike, *, window: int,
                   batch_size: int, expect_system: str | None = None,
                   before_restore: Callable[[Any, OutputSpec], None] | None
                   = None) -> Predictor:
  """The newest checkpoint of `workdir` as a `Predictor` (see module).

  `before_restore(system, spec)` runs once the system is checked and before
  the (slower) restore: callers check their inputs against it there.

  Raises:
    FileNotFoundError: no config.json or no checkpoint in the workdir.
    ValueError: a run of another system than `expect_system`, a system
      without spatial output, or a window it cannot take.
  """
  workdir = os.fspath(workdir)
  config = run_config.load(workdir)
  if expect_system is not None and config.get("system") != expect_system:
    raise ValueError(
        f"{run_config.path(workdir)}: this workdir holds a "
        f"{config.get('system')!r} run, but --system {expect_system!r} was "
        "asked for; point --workdir at a run of that system.")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"--batch must be a positive int, got {batch_size!r}.")
  system = base.get_system(config)
  check_declared_bands(config, (*system.predict_fields,
                                getattr(system, "output_field", None)))
  spec = output_spec(system, config.get("num_classes", 0))
  normalization = trained.normalization(config)
  names = sorted(set(config.data.get("fields", ())) | set(
      system.predict_fields))
  batch = trained.example_batch(names, window, batch_size, normalization)
  rng = jax.random.PRNGKey(config.seed)
  try:
    state_shape = jax.eval_shape(system.init, rng, batch)
  except (ValueError, TypeError, KeyError) as error:
    raise ValueError(f"--window {window}: the generator cannot take "
                     f"{window}x{window} windows: {error}") from error
  check_system_fits(system, state_shape, batch, spec)
  if before_restore is not None:
    before_restore(system, spec)
  run = trained.load_run(workdir, config=config, example=batch)
  state, step, system = run.state, run.step, run.system
  mesh = run.mesh
  sharding = (mesh_lib.batch_sharding(mesh)
              if batch_size % mesh_lib.batch_divisor(mesh) == 0
              else mesh_lib.replicated(mesh))
  return Predictor(system, state, normalization=normalization, spec=spec,
                   batch_sharding=sharding, step=step, config=config)
