"""Published figures of TPU chips, for the roofline bounds of `rsjax.train.aot`.

Per chip, from Google Cloud's TPU system-architecture pages (v4, v5e, v5p,
v6e): peak dense bf16 FLOP/s, HBM capacity and HBM bandwidth; and the clock
that turns the compiler's estimated cycles into seconds
(`rsjax.train.tpu_profile`). The bf16 peak is
also the bound for float32 steps: at JAX's default precision a TPU computes
float32 matrix products and convolutions in one bf16 pass of its MXUs.

A topology may expose each TensorCore of a chip as its own device (v4's
`jax.experimental.topologies` devices are per core, two per chip); a device
then gets its share of the chip (`per_device`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import jax


@dataclasses.dataclass(frozen=True)
class Chip:
  """One chip's (or one device's share of it) peak rates and memory."""
  name: str
  peak_flops: float        # dense bf16 FLOP/s
  hbm_bytes: float         # capacity
  hbm_bandwidth: float     # bytes/s
  clock_hz: float | None = None   # of the compiler's estimated cycles

  def share(self, cores: int) -> "Chip":
    return Chip(f"{self.name} (1/{cores} chip)" if cores > 1 else self.name,
                self.peak_flops / cores, self.hbm_bytes / cores,
                self.hbm_bandwidth / cores, self.clock_hz)


GB, GIB = 1e9, 2**30


def _mxu_clock(peak_flops: float, mxus: int, size: int = 128) -> float:
  """The clock at which `mxus` systolic arrays of size x size multiply-adds
  give `peak_flops` (two FLOPs per multiply-add per cycle)."""
  return peak_flops / (mxus * size * size * 2)


CHIPS = {
    # jax's device_kind -> figures. Clocks: the one that gives the peak from
    # the chip's 128 x 128 MXUs (v4 and v5p: 2 TensorCores x 4; v5e: 4),
    # 1.05, 1.50 and 1.75 GHz; none for v6e, whose MXU count is not
    # published in the pages above.
    "TPU v4": Chip("TPU v4", 275e12, 32 * GIB, 1200 * GB,
                   _mxu_clock(275e12, 8)),
    "TPU v5 lite": Chip("TPU v5e", 197e12, 16 * GB, 819 * GB,
                        _mxu_clock(197e12, 4)),
    "TPU v5": Chip("TPU v5p", 459e12, 95 * GB, 2765 * GB,
                   _mxu_clock(459e12, 8)),
    "TPU v6 lite": Chip("TPU v6e", 918e12, 32 * GB, 1638 * GB),
}

TOPOLOGY_PREFIXES = ("v4", "v5e", "v5p", "v6e")
"""Generations `launch.compile --topology` accepts, e.g. 'v5e:4x4',
'v5p:2x2x2' (2-D meshes for v5e and v6e, 3-D for v4 and v5p)."""


def per_device(devices: Sequence[jax.Device]) -> Chip:
  """The figures of one device of `devices` (all of one kind), a chip's
  share when a chip holds several devices (same `coords`)."""
  kind = devices[0].device_kind
  if kind not in CHIPS:
    raise KeyError(f"no published figures for device kind {kind!r}; known: "
                   f"{sorted(CHIPS)}")
  per_chip = collections.Counter(tuple(getattr(d, "coords", (d.id,)))
                                 for d in devices)
  return CHIPS[kind].share(max(per_chip.values()))
