"""The device mesh and the shardings of batches and parameters (docs/ARCHITECTURE.md, Sharding model).

`config.mesh = (('data', -1), ('fsdp', 1))`: named axes and their sizes, one of
which may be -1 for "all remaining devices". Batches are sharded over every
mesh axis (data parallel across 'data' and 'fsdp' together); parameters and
optimizer state are replicated, except that with 'fsdp' > 1 each array of at
least `fsdp_min_size` elements is sharded on its largest dimension divisible
by the 'fsdp' size (ZeRO-3 style; XLA inserts the all-gathers).

`collectives(hlo_text)` lists the cross-device ops of a compiled step (for
checking that a data-parallel step only all-reduces gradients and statistics,
and never all-gathers the batch or the parameters).

The mesh uses Auto axis types, so XLA propagates shardings through a jitted
step from its input and output shardings alone (JAX >= 0.7 makes Explicit the
default of `jax.make_mesh`, which would require annotating every contraction).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

FSDP_AXIS = "fsdp"


def make_mesh(axes: Sequence[tuple[str, int]],
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh with the named axes of `axes`; a size of -1 takes what is left."""
  devices = list(jax.devices() if devices is None else devices)
  names = [str(name) for name, _ in axes]
  sizes = [int(size) for _, size in axes]
  if len(set(names)) != len(names) or not names:
    raise ValueError(f"config.mesh: axis names must be unique and non-empty, "
                     f"got {names}")
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"config.mesh: sizes must be positive, with at most one "
                     f"-1, got {list(axes)}")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f"config.mesh {list(axes)}: {len(devices)} devices are "
                       f"not divisible by the fixed axis sizes ({known})")
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise ValueError(f"config.mesh {list(axes)} needs {math.prod(sizes)} "
                     f"devices, but {len(devices)} are available")
  return jax.make_mesh(tuple(sizes), tuple(names),
                       axis_types=(AxisType.Auto,) * len(names),
                       devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over all mesh axes."""
  return NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names)))


def batch_divisor(mesh: Mesh) -> int:
  """The number a global batch size must be divisible by."""
  return mesh.size


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


FSDP_MIN_SIZE = 2**18
"""Arrays with fewer elements stay replicated on an fsdp mesh (1 MiB in
float32): sharding them saves little and costs an all-gather each."""


def param_sharding(shape: Sequence[int], mesh: Mesh, *,
                   fsdp_min_size: int = FSDP_MIN_SIZE) -> NamedSharding:
  """Replicated, or sharded on 'fsdp' along the largest divisible dimension."""
  fsdp = dict(zip(mesh.axis_names, mesh.devices.shape)).get(FSDP_AXIS, 1)
  if fsdp == 1 or math.prod(shape) < fsdp_min_size:
    return replicated(mesh)
  for dim in np.argsort(shape)[::-1]:
    if shape[dim] % fsdp == 0:
      spec = [None] * len(shape)
      spec[dim] = FSDP_AXIS
      return NamedSharding(mesh, PartitionSpec(*spec))
  return replicated(mesh)


def state_shardings(abstract_state, mesh: Mesh, *,
                    fsdp_min_size: int | None = None):
  """Shardings for every leaf of a pytree of `jax.ShapeDtypeStruct`s
  (`fsdp_min_size` None: `FSDP_MIN_SIZE`; experiment configs set it as
  `config.fsdp_min_size`)."""
  if fsdp_min_size is None:
    fsdp_min_size = FSDP_MIN_SIZE
  return jax.tree.map(
      lambda leaf: param_sharding(leaf.shape, mesh, fsdp_min_size=fsdp_min_size),
      abstract_state)


COLLECTIVE_OPS = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all",
                  "collective-permute", "collective-broadcast")
# A result is one array or a tuple of them; TPU layouts nest one level of
# parentheses inside a tuple: (f32[3,3,8,8]{3,2,1,0:T(8,128)}, ...).
_COLLECTIVE = re.compile(
    r"= (\((?:[^()]|\([^()]*\))*\)|\S+) ("
    + "|".join(COLLECTIVE_OPS) + r")(?:-start)?\(")
# Any instruction of a collective kind, whatever its result looks like.
_ANY_COLLECTIVE = re.compile(
    r" (" + "|".join(COLLECTIVE_OPS) + r")(?:-start)?\(")
_ARRAY = re.compile(r"(\w+)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2,
          "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8}


class Collective(NamedTuple):
  """One cross-device op of an HLO module: its kind and result arrays."""
  op: str
  shapes: tuple[tuple[str, tuple[int, ...]], ...]   # ((dtype, dims), ...)

  @property
  def bytes(self) -> int:
    return sum(self.bytes_by_dtype.values())

  @property
  def bytes_by_dtype(self) -> dict[str, int]:
    found: dict[str, int] = {}
    for dtype, dims in self.shapes:
      found[dtype] = found.get(dtype, 0) + _BYTES.get(dtype, 4) * math.prod(dims)
    return found


def collectives(hlo_text: str) -> list[Collective]:
  """Every collective op in `hlo_text` (`jax.stages.Compiled.as_text()`).

  Async pairs count once (the `-start` op); fused or tupled results list
  each array. Raises ValueError if an instruction of a collective kind has
  a result this parser cannot read, so that a check of the collectives
  never passes on a module it did not understand.
  """
  found = []
  for match in _COLLECTIVE.finditer(hlo_text):
    shapes = tuple((dtype, tuple(int(d) for d in dims.split(",") if d))
                   for dtype, dims in _ARRAY.findall(match.group(1)))
    found.append(Collective(match.group(2), shapes))
  present = _ANY_COLLECTIVE.findall(hlo_text)
  if len(present) != len(found):
    unread = next((line.strip() for line in hlo_text.splitlines()
                   if len(_ANY_COLLECTIVE.findall(line))
                   != len(_COLLECTIVE.findall(line))), "")
    raise ValueError(
        f"{len(present) - len(found)} of {len(present)} collective "
        f"instructions have a result rsjax.mesh.collectives cannot parse, "
        f"e.g.: {unread[:300]}")
  return found
