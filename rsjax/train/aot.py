"""Ahead-of-time compile of a config's train and eval steps for any device mesh.

Issue 22: a pod-scale run is checked before a pod is booked. With libtpu
installed (`pip install -e '.[tpu]'`), `jax.experimental.topologies` describes
TPU chips this host does not have, and the real TPU compiler compiles for
them. `compile_steps(config, mesh)` builds the trainer's own jitted steps
(`rsjax.train.trainer.jit_steps`) on abstract inputs: the batch from the
field declarations (`rsjax.data.pipeline.abstract_batch`), the state from
`jax.eval_shape(system.init)` placed by `rsjax.mesh.state_shardings` (fsdp
included). No data is read and no weight is made.

Each `StepReport` holds, per device (XLA's SPMD program is one device's):
memory (the compiler's own peak; arguments, outputs, temporaries, generated
code, and the donated bytes that outputs reuse), FLOPs and bytes accessed
(XLA cost analysis), the collectives of the compiled HLO by kind (count and
result bytes, in all and by dtype), a roofline time of the step,
max(FLOPs / peak FLOP/s, bytes accessed / HBM bandwidth), from the chip's
published figures (`rsjax.train.tpu_chips`), and for a TPU the compiler's
own estimate of the step's time with its cost centres
(`rsjax.train.tpu_profile`). The bound
ignores the collectives' time on the interconnect and every stall; it is
what the chip could do at best.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import ml_collections

from rsjax import mesh as mesh_lib
from rsjax.data import pipeline
from rsjax.nn import target
from rsjax.systems import base
from rsjax.train import tpu_chips
from rsjax.train import tpu_profile
from rsjax.train import trainer
from rsjax.train import training_length


class StepDoesNotFit(ValueError):
  """A compiled step needs more memory per device than the chip has."""


@dataclasses.dataclass(frozen=True)
class StepReport:
  """What the compiler says of one step on one device of the mesh."""
  name: str                      # 'train' | 'eval'
  batch: int                     # global
  flops: float                   # per device
  bytes_accessed: float          # per device, HBM traffic estimate
  argument_bytes: int
  output_bytes: int
  alias_bytes: int               # outputs written into donated arguments
  temp_bytes: int
  code_bytes: int
  compiler_peak_bytes: int       # the compiler's own peak; 0 if not given
  state_bytes: int               # of the arguments: the sharded state
  collectives: dict[str, dict]   # kind -> {'count', 'bytes', 'bytes_by_dtype'}
  chip: tpu_chips.Chip | None
  profile: tpu_profile.Profile | None = None   # TPU compiles only
  hlo: str = dataclasses.field(default="", repr=False)   # compiled HLO text

  @property
  def sum_of_parts_bytes(self) -> int:
    """Inputs, outputs not aliased to donated inputs, temporaries and the
    program, added up: an estimate of the peak that assumes they are all
    live at once and that `temp_bytes` covers every intermediate buffer
    (on TPU it can be far less: the compiler places some elsewhere)."""
    return (self.argument_bytes + self.output_bytes - self.alias_bytes
            + self.temp_bytes + self.code_bytes)

  @property
  def peak_bytes(self) -> int:
    """Live memory at the step's peak: the larger of the compiler's own
    figure (`memory_analysis().peak_memory_in_bytes`, from its buffer
    assignment) and `sum_of_parts_bytes`. On TPU the compiler's figure can
    be the larger: it holds buffers the temporaries leave out (a gradient
    and its all-reduced copy, `tests/train/test_aot.py`); for paper-size
    steps it is sometimes the smaller (pix2pix on v5p: 0.97 GB against
    1.12 GB). On CPU it counts the
    arguments only (jax 0.10.2, pix2pix demo step: 15.4 MiB against 112 MiB
    of temporaries), so there the sum is the better bound."""
    return max(self.compiler_peak_bytes, self.sum_of_parts_bytes)

  @property
  def capacity_bytes(self) -> float | None:
    return self.chip.hbm_bytes if self.chip else None

  @property
  def fits(self) -> bool | None:
    return None if self.chip is None else self.peak_bytes <= self.chip.hbm_bytes

  @property
  def seconds_roofline(self) -> float | None:
    """max(FLOP time, HBM time) at the chip's peaks. Not a lower bound: XLA's
    bytes accessed count every operand of every fusion as an HBM read, and
    the TPU compiler's own estimate can be below it (small steps)."""
    if self.chip is None:
      return None
    return max(self.flops / self.chip.peak_flops,
               self.bytes_accessed / self.chip.hbm_bandwidth)

  def to_json(self, mesh: dict[str, int], topology: str | None) -> dict:
    return {
        "step": self.name, "topology": topology, "mesh": mesh,
        "batch": self.batch,
        "flops_per_step": self.flops * math.prod(mesh.values()),
        "flops_per_device": self.flops,
        "bytes_accessed_per_device": self.bytes_accessed,
        "bytes_per_chip": {"argument": self.argument_bytes,
                           "output": self.output_bytes,
                           "alias": self.alias_bytes,
                           "temp": self.temp_bytes, "code": self.code_bytes,
                           "state": self.state_bytes,
                           "peak": self.peak_bytes,
                           "compiler_peak": self.compiler_peak_bytes,
                           "sum_of_parts": self.sum_of_parts_bytes,
                           "capacity": self.capacity_bytes},
        "fits": self.fits,
        "collectives": self.collectives,
        "step_seconds_roofline": self.seconds_roofline,
        "step_seconds_estimate": (self.profile.step_seconds_estimate
                                  if self.profile else None),
        "profile": self.profile.to_json() if self.profile else None,
        "chip": dataclasses.asdict(self.chip) if self.chip else None,
    }


def _sharded(abstract, shardings):
  return jax.tree.map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                  sharding=sharding),
      abstract, shardings)


def _shard_bytes(tree) -> int:
  """Bytes one device holds of a pytree of sharded ShapeDtypeStructs (the
  largest shard where shards differ)."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    shape = leaf.sharding.shard_shape(leaf.shape)
    total += math.prod(shape) * jnp.dtype(leaf.dtype).itemsize
  return total


def _collectives(hlo: str) -> dict[str, dict]:
  found: dict[str, dict] = collections.defaultdict(
      lambda: {"count": 0, "bytes": 0, "bytes_by_dtype": {}})
  for collective in mesh_lib.collectives(hlo):
    kind = found[collective.op]
    kind["count"] += 1
    kind["bytes"] += collective.bytes
    for dtype, size in collective.bytes_by_dtype.items():
      kind["bytes_by_dtype"][dtype] = kind["bytes_by_dtype"].get(dtype, 0) + size
  return dict(found)


def step_report(name: str, compiled, batch: int, state_bytes: int,
                chip: tpu_chips.Chip | None) -> StepReport:
  """What the compiler says of `compiled` (a compiled step), per device."""
  cost = compiled.cost_analysis()
  cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
  memory = compiled.memory_analysis()
  size = lambda field: int(getattr(memory, field, 0) or 0)  # noqa: E731
  flops = float(cost.get("flops", 0.0))
  bytes_accessed = float(cost.get("bytes accessed", 0.0))
  hlo = compiled.as_text()
  return StepReport(
      name=name, batch=batch, flops=flops, bytes_accessed=bytes_accessed,
      argument_bytes=size("argument_size_in_bytes"),
      output_bytes=size("output_size_in_bytes"),
      alias_bytes=size("alias_size_in_bytes"),
      temp_bytes=size("temp_size_in_bytes"),
      code_bytes=size("generated_code_size_in_bytes"),
      compiler_peak_bytes=size("peak_memory_in_bytes"),
      state_bytes=state_bytes,
      collectives=_collectives(hlo), chip=chip, hlo=hlo,
      profile=(tpu_profile.profile(hlo, chip, flops, bytes_accessed)
               if chip is not None else None))


def compile_steps(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
                  *, steps: tuple[str, ...] = ("train", "eval")
                  ) -> dict[str, StepReport]:
  """Compiles `config`'s train and/or eval step for `mesh` (whose devices
  may be a TPU topology's); name -> report. Nothing runs. Layers that choose
  their form by platform (`rsjax.nn.target`) are traced for the mesh's
  platform, not this host's."""
  platform = next(iter(mesh.devices.flat)).platform
  with target.target_platform(platform):
    return _compile_steps(config, mesh, steps)


def _compile_steps(config, mesh, steps) -> dict[str, StepReport]:
  trainer.check_config(config)
  # A length in epochs needs the dataset, which a compile for another
  # machine may not have; the step count moves only the schedule's
  # breakpoints, not the compiled program.
  config = training_length.stand_in(config)
  system = base.get_system(config)
  batch = pipeline.abstract_batch(config.data, mesh, train=True)
  abstract = jax.eval_shape(system.init, jax.random.PRNGKey(config.seed),
                            batch)
  shardings = mesh_lib.state_shardings(
      abstract, mesh, fsdp_min_size=config.get("fsdp_min_size"))
  state = _sharded(abstract, shardings)
  state_bytes = _shard_bytes(state)
  replicated = mesh_lib.replicated(mesh)
  train_step, eval_step = trainer.jit_steps(system, shardings, replicated)
  devices = list(mesh.devices.flat)
  chip = (tpu_chips.per_device(devices)
          if devices[0].platform == "tpu" else None)
  reports = {}
  if "train" in steps:
    first_bad = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated)
    compiled = train_step.lower(state, batch, first_bad).compile()
    reports["train"] = step_report("train", compiled,
                                   next(iter(batch.values())).shape[0],
                                   state_bytes, chip)
  if "eval" in steps:
    eval_batch = pipeline.abstract_batch(config.data, mesh, train=False)
    compiled = eval_step.lower(state, eval_batch).compile()
    reports["eval"] = step_report("eval", compiled,
                                  next(iter(eval_batch.values())).shape[0],
                                  state_bytes, chip)
  return reports


def check_fits(report: StepReport, mesh: dict[str, int]) -> None:
  """`StepDoesNotFit` for a step over its chip's HBM, saying by how much
  and what would fit: the largest batch, estimated as linear in the batch
  beyond the state and the program, and the fsdp size that would shard the
  state enough (`rsjax.mesh.param_sharding`)."""
  if report.fits is not False:
    return
  devices = math.prod(mesh.values())
  capacity = report.capacity_bytes
  fixed = report.state_bytes + report.code_bytes
  per_example = (report.peak_bytes - fixed) / (report.batch / devices)
  per_device = int((capacity - fixed) // per_example) if capacity > fixed \
      else 0
  hints = []
  if per_device >= 1:
    hints.append(f"a global batch of at most {per_device * devices} "
                 f"({per_device} per device; estimated, linear in the batch)")
  fsdp = mesh.get(mesh_lib.FSDP_AXIS, 1)
  for size in (2, 4, 8, 16, 32, 64):
    if size <= fsdp or devices % size:
      continue
    if report.peak_bytes - report.state_bytes * (1 - fsdp / size) <= capacity:
      hints.append(f"a mesh with fsdp={size} (the state sharded "
                   f"{size} ways; estimated)")
      break
  raise StepDoesNotFit(
      f"the {report.name} step needs {report.peak_bytes / 2**30:.2f} GiB per "
      f"device, {(report.peak_bytes - capacity) / 2**30:.2f} GiB more than "
      f"the {capacity / 2**30:.2f} GiB of a {report.chip.name} at global "
      f"batch {report.batch} on mesh {mesh}; "
      + ("try " + " or ".join(hints) if hints else
         "no batch fits: the state alone is too large for one device; shard "
         "it with an fsdp mesh axis"))


def summary(reports: dict[str, StepReport], mesh: dict[str, int],
            topology: str | None) -> str:
  """A short table of `reports` for a terminal."""
  lines = []
  first = next(iter(reports.values()))
  if first.chip is not None:
    chip = first.chip
    lines.append(
        f"{topology or ''} mesh {mesh}; per device: {chip.name}, "
        f"{chip.peak_flops / 1e12:.0f} TFLOP/s bf16 peak, "
        f"{chip.hbm_bytes / 2**30:.2f} GiB HBM at "
        f"{chip.hbm_bandwidth / 1e9:.0f} GB/s (published figures)")
  lines.append("| step | batch | peak GiB/device (args, out-donated, temp, "
               "code) "
               "| of capacity | GFLOP/device | collectives (count, MB) "
               "| roofline ms |")
  lines.append("|---|---|---|---|---|---|---|")
  for report in reports.values():
    gib = lambda n: f"{n / 2**30:.2f}"  # noqa: E731
    memory = (f"{gib(report.peak_bytes)} ({gib(report.argument_bytes)}, "
              f"{gib(report.output_bytes - report.alias_bytes)}, "
              f"{gib(report.temp_bytes)}, {gib(report.code_bytes)})")
    share = (f"{report.peak_bytes / report.capacity_bytes:.0%}"
             if report.capacity_bytes else "-")
    collectives = ", ".join(
        f"{kind} {c['count']} x, {c['bytes'] / 1e6:.1f}"
        for kind, c in sorted(report.collectives.items())) or "none"
    bound = (f"{report.seconds_roofline * 1e3:.2f}"
             if report.seconds_roofline is not None else "-")
    lines.append(f"| {report.name} | {report.batch} | {memory} | {share} | "
                 f"{report.flops / 1e9:.1f} | {collectives} | {bound} |")
  return "\n".join(lines)


def tpu_mesh(topology: str, axes) -> jax.sharding.Mesh:
  """A mesh of the compile-only devices of TPU `topology` (e.g. 'v5e:2x2'),
  with `axes` as in `config.mesh`. Needs libtpu (the `tpu` extra)."""
  prefix = topology.partition(":")[0]
  if prefix not in tpu_chips.TOPOLOGY_PREFIXES:
    raise ValueError(f"--topology {topology!r}: the name must start with one "
                     f"of {', '.join(tpu_chips.TOPOLOGY_PREFIXES)} and a "
                     f"colon, e.g. 'v5e:2x2' or 'v5p:2x2x1'")
  # libtpu takes /tmp/libtpu_lockfile so that two processes never drive one
  # TPU's chips; compile-only devices drive none, and parallel test workers
  # or compiles each load libtpu.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  try:
    from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
    description = topologies.get_topology_desc(topology_name=topology,
                                               platform="tpu")
  except (ImportError, RuntimeError, ValueError) as error:
    raise RuntimeError(
        f"cannot describe TPU topology {topology!r} ({error}); the TPU "
        f"compiler needs libtpu: pip install -e '.[tpu]'") from None
  return mesh_lib.make_mesh(axes, devices=description.devices)


def mesh_shape(mesh: jax.sharding.Mesh) -> dict[str, int]:
  return {str(name): int(size) for name, size in mesh.shape.items()}

