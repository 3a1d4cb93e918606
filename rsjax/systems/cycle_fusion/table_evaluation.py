"""How a fusion method is scored for the fusion paper's tables.

The residual cycle GAN (`system.CycleFusion`) and the methods it is compared
with (`baselines.FusionBaseline`: AIHS, ESRCNN, the SAR-optical cGAN; Jiang,
Shen & Li, Tables II and IV) are evaluated the same way, so their rows land
in one table: the fused image of the central `config.patch_size` window is
scored against the reference with the tables' indices (`scores`), and, with
`config.eval_baselines`, so are the trivial baselines X^ ('lowres_') and Z
('t1_', when the mode reads it).

`TableEvaluation` is a mixin: the class provides `central`, `predict`,
`inputs`, `band_names`, `q_block_size`, `eval_baselines` and `config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from rsjax.systems import base, trained
from rsjax.systems.cycle_fusion import scores as scores_lib

TRIVIAL_BASELINES = ("lowres", "t1")


class TableEvaluation:
  """eval_step / finalize_eval / panels of a fusion method (see the module
  docstring)."""

  def eval_step(self, state: base.State, batch) -> dict[str, jax.Array]:
    """Sums of the tables' indices for the fused image, and for the trivial
    baselines X^ and Z if eval_baselines; on the central window."""
    batch = self.central(batch)
    images = {"": self.predict(state, batch)}
    if self.eval_baselines:
      observed = self.inputs.observations(batch)
      images.update({f"{p}_": observed[p] for p in TRIVIAL_BASELINES
                     if p in observed})
    return scores_lib.score_sums(
        images, self.inputs.optical(batch, "target"), batch.get("mask"),
        ratio=self.inputs.ratio, band_names=self.band_names,
        q_block_size=self.q_block_size)

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    scores = scores_lib.finalize(sums)
    for name in TRIVIAL_BASELINES:
      if f"{name}_count" in sums:
        scores.update(scores_lib.finalize(sums, f"{name}_"))
    return scores

  def panels(self, batch: Mapping[str, Any], prediction
             ) -> dict[str, base.Panel]:
    """Host panels of the observations, the fused image and the reference
    (real examples only; the central window, as `predict`)."""
    return self.inputs.panels(self.central(batch), prediction,
                              trained.normalization(self.config))
