"""What the residual cycle GAN observes: mode, fields, bands, clouds, X^.

Jiang, Shen & Li (TGRS 2022), Sec. II and Eq. 1-4, for the `cycle_fusion`
system (`system.CycleFusion`): `FusionInputs(config)` reads the config keys

  mode            'hss' (Y, X^) | 'st' (Z, X^) | 'hsts' (Y, Z, X^)
  sar_field       Y, t2 HR SAR ('s1_t2'), all channels
  t1_field        Z, t1 HR MS ('s2'), `bands`
  target          X, t2 HR MS label ('s2_t2'), `bands`
  low_res         how X^ (t2 LR MS, upsampled to the HR grid) is formed:
                  'simulate' = resize(X) (the paper's simulated experiments)
                  or 'dataset' = `low_res_field` ('s2_coarse') as stored: an
                  image of the t2 date, as the paper's LR image (Sec. II;
                  the synthetic world's s2_coarse views s2_t2)
  resolution_ratio, resize.upsample, resize.cloud_value   the resize branch
                  (S = 1: same-resolution thick-cloud removal, Sec. III-B)
  cloudy, cloud_mask_field, cloud_classes   M = mask field in the classes;
                  X^ (and the regenerated X^*) get M's pixels filled
  bands           indices into B2, B3, B4, B8 (the paper: RGB = 0, 1, 2)

and builds, per batch, the observations, the forward generator's input
(Y, Z, X^) and the regenerated (Y*, Z*, X^*) of the backward part. Errors for
a bad config name the key; `check_batch` checks a batch's fields and shapes
(static, so it fails at start, under `jax.eval_shape`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rsjax.data import fields as fields_lib
from rsjax.systems import base, checks
from rsjax.systems import inputs as inputs_lib
from rsjax.systems.cycle_fusion import patches, resize_branch

MODES = {"hss": ("sar", "lowres"), "st": ("t1", "lowres"),
         "hsts": ("sar", "t1", "lowres")}
LOW_RES = ("simulate", "dataset")


def choice(config, key: str, valid, prefix: str = "config.") -> Any:
  """config[key] if it is one of `valid`, else a ValueError naming the key."""
  value = config.get(key)
  if value not in valid:
    raise ValueError(f"{prefix}{key}: unknown value {value!r}; valid: "
                     f"{', '.join(map(str, valid))}")
  return value


class FusionInputs:
  """The observations of one cycle_fusion config (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.mode = choice(config, "mode", MODES)
    self.low_res = choice(config, "low_res", LOW_RES)
    self.parts = MODES[self.mode]
    self.ratio = resize_branch.check_ratio(config.resolution_ratio)
    self.upsampling = resize_branch.check_upsampling(config.resize.upsample)
    self.cloud_value = float(config.resize.cloud_value)
    self.cloudy = bool(config.cloudy)
    self.cloud_classes = tuple(int(c) for c in config.cloud_classes)
    self.fields = {"sar": config.sar_field, "t1": config.t1_field,
                   "lowres": (config.target if self.low_res == "simulate"
                              else config.low_res_field),
                   "target": config.target, "cloud": config.cloud_mask_field}
    for key in ("sar_field", "t1_field", "low_res_field", "target",
                "cloud_mask_field"):
      inputs_lib.check_field_names((config[key],), f"config.{key}")
    self.bands = tuple(int(b) for b in config.bands)
    names = inputs_lib.run_bands(config, config.target)
    if not self.bands or any(not 0 <= b < len(names) for b in self.bands) \
        or len(set(self.bands)) != len(self.bands):
      raise ValueError(f"config.bands must be distinct indices into "
                       f"{names}, got {config.bands!r}")
    self.band_names = tuple(names[b] for b in self.bands)
    self.predict_fields = tuple(dict.fromkeys(
        [self.fields[p] for p in self.parts]
        + ([self.fields["cloud"]] if self.cloudy else [])))
    self.required_fields = tuple(dict.fromkeys(
        self.predict_fields + (self.fields["target"],)))
    fields = config.get("data", {}).get("fields")
    missing = [f for f in self.required_fields if fields and f not in fields]
    if missing:
      raise ValueError(f"config.data.fields {tuple(fields)} lacks {missing}, "
                       f"which cycle_fusion mode {self.mode!r} (low_res "
                       f"{self.low_res!r}, cloudy {self.cloudy}) reads")
    self.num_classes = int(config.num_classes)
    self.channels = {"sar": inputs_lib.field_channels(
        config.sar_field, self.num_classes,
        (config.get("data") or {}).get("bands")),
                     "t1": len(self.bands), "lowres": len(self.bands)}
    self.backward_parts = tuple(p for p in self.parts if p != "lowres")

  def check_batch(self, batch: Mapping[str, Any], size_multiple: int = 1,
                  patch_size: int | None = None) -> None:
    """Clear errors for missing fields, bad shapes or an unusable tile size
    (static shapes: works under jit and eval_shape, i.e. at start). With
    `patch_size` (`patches`), the P x P windows must fit in the tiles, and
    the ratio and the generator see those windows instead of whole tiles."""
    checks.require_fields(batch, self.required_fields,
                          f"cycle_fusion mode {self.mode!r}")
    target = batch[self.fields["target"]]
    if target.ndim != 4 or target.shape[-1] <= max(self.bands):
      raise ValueError(f"config.target {self.fields['target']!r}: expected "
                       f"(B, H, W, C > {max(self.bands)}) for config.bands "
                       f"{self.bands}, got shape {target.shape}")
    height, width = target.shape[1:3]
    for name in {self.fields[p] for p in self.parts}:
      if tuple(batch[name].shape[:3]) != tuple(target.shape[:3]):
        raise ValueError(f"field {name!r} of shape {batch[name].shape} does "
                         f"not match the target's {target.shape[:3]}")
    if self.cloudy:
      checks.check_shape(batch[self.fields["cloud"]],
                         (target.shape[:3], target.shape[:3] + (1,)),
                         f"config.cloud_mask_field {self.fields['cloud']!r}",
                         "(one class per HR pixel)")
    shape = tuple(target.shape)
    if patch_size is not None:
      patches.check_fits(patch_size, height, width)
      height = width = patch_size
      shape = (shape[0], patch_size, patch_size) + shape[3:]
    resize_branch.check_ratio(self.ratio, height, width)
    checks.check_tile_size(shape, size_multiple, "config.model.generator")

  def optical(self, batch, part: str) -> jax.Array:
    """An optical field's `bands` as float32."""
    return jnp.asarray(batch[self.fields[part]], jnp.float32)[..., self.bands]

  def cloud_mask(self, batch):
    """M: (B, H, W, 1) float32, 1 on cloud-covered pixels (None if clear)."""
    if not self.cloudy:
      return None
    mask = jnp.asarray(batch[self.fields["cloud"]])
    mask = mask.reshape(mask.shape[:3])
    return jnp.isin(mask, jnp.asarray(self.cloud_classes))[..., None].astype(
        jnp.float32)

  def observations(self, batch) -> dict[str, jax.Array]:
    """{'sar', 't1', 'lowres'} of the mode (normalized, HR grid)."""
    out = {}
    mask = self.cloud_mask(batch)
    for part in self.parts:
      if part == "sar":
        out[part] = inputs_lib.field_input(batch, self.fields["sar"],
                                           self.num_classes)
      elif part == "t1":
        out[part] = self.optical(batch, "t1")
      elif self.low_res == "simulate":
        out[part] = resize_branch.resize(
            self.optical(batch, "target"), self.ratio, method=self.upsampling,
            cloud_mask=mask, cloud_value=self.cloud_value)
      else:
        low = self.optical(batch, "lowres")
        out[part] = low if mask is None else resize_branch.cloud_fill(
            low, mask, self.cloud_value)
    return out

  def forward_input(self, observed) -> jax.Array:
    """(Y, Z, X^) of the mode, concatenated on channels (Eq. 2)."""
    return jnp.concatenate([observed[p] for p in self.parts], axis=-1)

  def cycle(self, fused, regenerated, mask=None) -> jax.Array:
    """(Y*, Z*, X^*): G_B's output and the resize branch, in input order."""
    split = np.cumsum([self.channels[p] for p in self.backward_parts])[:-1]
    pieces = dict(zip(self.backward_parts, jnp.split(regenerated, split, -1)))
    pieces["lowres"] = resize_branch.resize(
        fused, self.ratio, method=self.upsampling, cloud_mask=mask,
        cloud_value=self.cloud_value)
    return jnp.concatenate([pieces[p] for p in self.parts], axis=-1)

  def panels(self, batch: Mapping[str, Any], prediction,
             normalization=inputs_lib.DEFAULT_NORMALIZATION
             ) -> dict[str, base.Panel]:
    """Host panels of the real examples: the observations, X_f and X (RGB;
    NRG too when config.bands has B8), on the target's stretch.
    `normalization`: the one the batch went through, for SAR's dB range."""
    batch, prediction = inputs_lib.real_rows(batch, prediction)
    target = np.asarray(batch[self.fields["target"]], np.float32)[..., self.bands]
    observed = jax.device_get(self.observations(batch))
    out = {}
    if "sar" in observed:
      name = self.fields["sar"]
      out[name] = inputs_lib.grey_panel(name, observed["sar"],
                                        fields_lib.grey_band(name),
                                        normalization=normalization)
    images = [(self.fields["t1"], self.fields["t1"], observed.get("t1")),
              ("lowres", f"lowres {self.fields['lowres']}", observed["lowres"]),
              ("pred", f"pred {self.fields['target']}", prediction),
              ("target", f"target {self.fields['target']}", target)]
    for label, title, image in images:
      if image is not None:
        out.update(self._optical_panels(
            label, title, np.asarray(image, np.float32),
            None if label == "target" else target))
    return out

  def _optical_panels(self, label, title, image, reference):
    out = {}
    target = self.fields["target"]
    for suffix, wanted in fields_lib.field(target).display.composites:
      indices = fields_lib.band_indices(target, wanted)
      if all(b in self.bands for b in indices):
        order = [self.bands.index(b) for b in indices]
        out[f"{label} {suffix}"] = inputs_lib.composite_panel(
            title, image, order, wanted, reference)
    if not out:
      out[label] = inputs_lib.composite_panel(
          title, image, (0, 0, 0), self.band_names[:1], reference)
    return out
