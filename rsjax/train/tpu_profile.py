"""Where a step's time goes on a TPU chip, by the TPU compiler's own estimates.

Issue 24. The TPU compiler writes its cost model's estimate of every
instruction it schedules into the compiled HLO (`"estimated_cycles"` in the
instruction's backend config), and JAX names the Flax layer an instruction
came from in its `op_name` metadata (`jit(step)/transpose(jvp(Generator))/
up_0/spade/conv/conv_general_dilated`: the module path, the primitive last,
`transpose(...)` for the backward pass). `profile(hlo_text, chip)` adds the
estimates up:

- the step's estimated time: the sum of the cycles of the entry
  computation's instructions at the chip's clock (`tpu_chips.Chip.clock_hz`);
- its efficiency: the FLOP bound (FLOPs / peak) over that estimate;
- the cost centres by Flax layer (forward and backward apart; code outside
  the modules by the step's jitted functions, `layer_of`) and by kind:
  convolution (convolutions and matrix products, alone or fused), reduction,
  data movement (copies, transposes, pads, slices, layout changes),
  collective, elementwise (every other fusion or op).

It is the compiler's model, not a measurement: it leaves out the time of
collectives on the interconnect beyond their local part, the host's input
pipeline, and any stall it does not model. A step with control flow in its
entry computation (`while`, `conditional`: e.g. cloud removal's stage
schedule) has no profile: the cycles of the branches and bodies, which the
entry's own instructions leave out, are not added up here (counting only
the entry gave cloud removal an impossible 120 % efficiency). Nor has a
step without estimates (a compile for another platform).
"""

from __future__ import annotations

import collections
import dataclasses
import re

from rsjax import mesh as mesh_lib
from rsjax.train import tpu_chips

KINDS = ("convolution", "reduction", "data movement", "collective",
         "elementwise")
NO_LAYER = "(no op_name)"

_COMPUTATION = re.compile(r"^(ENTRY )?%(\S+) ")
# `%name = TYPE opcode(`: TYPE is one array or a parenthesised tuple (whose
# TPU layouts nest one more level of parentheses).
_INSTRUCTION = re.compile(
    r"^\s+(?:ROOT )?%\S+ = (?:\((?:[^()]|\([^()]*\))*\)|\S+) ([a-z][\w-]*)\(")
_CYCLES = re.compile(r'"estimated_cycles":"(\d+)"')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r"calls=%([\w.-]+)")
_WRAPPED = re.compile(r"^([\w-]+)\((.*)\)$")

_CONVOLUTION_OPS = {"convolution", "dot"}
_REDUCTION_OPS = {"reduce", "reduce-window", "select-and-scatter"}
_MOVEMENT_OPS = {"copy", "copy-start", "copy-done", "transpose", "pad",
                 "slice", "dynamic-slice", "dynamic-update-slice",
                 "concatenate", "broadcast", "reshape", "bitcast", "reverse",
                 "gather", "scatter", "get-tuple-element", "tuple",
                 "parameter", "constant", "iota", "bitcast-convert"}
_CONTROL_FLOW_OPS = {"while", "conditional", "call"}
_COLLECTIVE_OPS = {f"{op}{suffix}" for op in mesh_lib.COLLECTIVE_OPS
                   for suffix in ("", "-start", "-done")}


@dataclasses.dataclass(frozen=True)
class CostCentre:
  """Estimated seconds of a layer or a kind, and its share of the step."""
  name: str
  seconds: float
  share: float
  forward_seconds: float = 0.0
  backward_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Profile:
  """The compiler's estimate of one step on one device."""
  cycles: int
  clock_hz: float
  step_seconds_estimate: float
  flop_seconds: float
  hbm_seconds: float
  efficiency: float               # flop_seconds / step_seconds_estimate
  by_layer: tuple[CostCentre, ...]   # most expensive first
  by_kind: tuple[CostCentre, ...]

  def to_json(self, top: int = 20) -> dict:
    centre = lambda c: dataclasses.asdict(c)  # noqa: E731
    return {"cycles": self.cycles, "clock_hz": self.clock_hz,
            "step_seconds_estimate": self.step_seconds_estimate,
            "flop_seconds": self.flop_seconds,
            "hbm_seconds": self.hbm_seconds, "efficiency": self.efficiency,
            "by_kind": [centre(c) for c in self.by_kind],
            "by_layer": [centre(c) for c in self.by_layer[:top]]}


def _computations(hlo_text: str) -> tuple[dict[str, list[str]], str | None]:
  """{computation name: its instruction lines}, and the entry's name."""
  computations: dict[str, list[str]] = {}
  entry, current = None, None
  for line in hlo_text.splitlines():
    if current is None:
      match = _COMPUTATION.match(line)
      if match and line.rstrip().endswith("{"):
        current = match.group(2)
        computations[current] = []
        if match.group(1):
          entry = current
    elif line.startswith("}"):
      current = None
    else:
      computations[current].append(line)
  return computations, entry


def _opcodes(lines) -> set[str]:
  return {m.group(1) for m in map(_INSTRUCTION.match, lines) if m}


def _kind(opcode: str, called: set[str]) -> str:
  ops = called | {opcode}
  if ops & _COLLECTIVE_OPS:
    return "collective"
  if ops & _CONVOLUTION_OPS:
    return "convolution"
  if ops & _REDUCTION_OPS:
    return "reduction"
  if opcode != "fusion" and opcode in _MOVEMENT_OPS or (
      opcode == "fusion" and called <= _MOVEMENT_OPS):
    return "data movement"
  return "elementwise"


def layer_of(op_name: str) -> tuple[str, bool]:
  """(cost centre, whether it is the backward pass) of an instruction's
  `op_name`: the Flax module path between the outer `jit(...)` and the
  primitive, with transformation wrappers (`jvp(...)`, `transpose(...)`,
  `vmap(...)`) unwrapped and jitted functions (`jit(relu)`) left out; for
  code outside any module, the step and its jitted functions (e.g.
  `train_step/_ssim`) or, directly in the step, the primitive
  (`train_step/concatenate`); a name JAX did not make (an input's, e.g.
  `batch['s1']`) as it is."""
  parts = op_name.split("/")
  if not parts[0].startswith("jit(") or len(parts) < 2:
    return op_name, False
  step = _WRAPPED.match(parts[0]).group(2)
  primitive, parts = parts[-1], parts[1:-1]
  path, functions, backward = [], [], False
  for part in parts:
    jitted = part.startswith(("jit(", "pjit("))
    while (match := _WRAPPED.match(part)):
      backward |= match.group(1) == "transpose"
      part = match.group(2)
    if part:
      (functions if jitted else path).append(part)
  if path:
    return "/".join(path), backward
  return "/".join([step, *(functions or [primitive])]), backward


def profile(hlo_text: str, chip: tpu_chips.Chip, flops: float,
            bytes_accessed: float) -> Profile | None:
  """The compiler-estimated profile of a compiled step (`Compiled.as_text()`
  of a TPU compile) on one device of `chip`; `flops` and `bytes_accessed`
  are the compiler's cost analysis per device. None without estimates or
  without a clock figure for the chip."""
  if chip.clock_hz is None or '"estimated_cycles"' not in hlo_text:
    return None
  computations, entry = _computations(hlo_text)
  if entry is None:
    return None
  kinds: dict[str, int] = collections.Counter()
  layers: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
  total = 0
  for line in computations[entry]:
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    opcode = match.group(1)
    if opcode in _CONTROL_FLOW_OPS:
      return None
    cycles = _CYCLES.search(line)
    if not cycles:
      continue
    cycles = int(cycles.group(1))
    calls = _CALLS.search(line)
    called = (_opcodes(computations.get(calls.group(1), ()))
              if calls else set())
    kinds[_kind(opcode, called)] += cycles
    name = _OP_NAME.search(line)
    layer, backward = (layer_of(name.group(1).replace("\\'", "'"))
                       if name else (NO_LAYER, False))
    layers[layer][int(backward)] += cycles
    total += cycles
  if not total:
    return None
  seconds = lambda c: c / chip.clock_hz  # noqa: E731
  by_kind = tuple(sorted(
      (CostCentre(kind, seconds(kinds[kind]), kinds[kind] / total)
       for kind in KINDS if kinds[kind]), key=lambda c: -c.seconds))
  by_layer = tuple(sorted(
      (CostCentre(name, seconds(fwd + bwd), (fwd + bwd) / total,
                  seconds(fwd), seconds(bwd))
       for name, (fwd, bwd) in layers.items()), key=lambda c: -c.seconds))
  estimate = seconds(total)
  flop_seconds = flops / chip.peak_flops
  return Profile(
      cycles=total, clock_hz=chip.clock_hz, step_seconds_estimate=estimate,
      flop_seconds=flop_seconds,
      hbm_seconds=bytes_accessed / chip.hbm_bandwidth,
      efficiency=flop_seconds / estimate, by_layer=by_layer, by_kind=by_kind)


def summary(found: Profile, top: int = 12) -> str:
  """The profile as a few lines for a terminal."""
  ms = lambda s: f"{s * 1e3:.2f}"  # noqa: E731
  lines = [
      f"compiler estimate {ms(found.step_seconds_estimate)} ms per step "
      f"({found.cycles:,} cycles at {found.clock_hz / 1e9:.2f} GHz); FLOP "
      f"bound {ms(found.flop_seconds)} ms, HBM bound "
      f"{ms(found.hbm_seconds)} ms; efficiency (FLOP bound / estimate) "
      f"{found.efficiency:.0%}. A model of the chip: no interconnect time, "
      f"no host input"
      + ".",
      "| kind | ms | share |", "|---|---|---|"]
  lines += [f"| {c.name} | {ms(c.seconds)} | {c.share:.0%} |"
            for c in found.by_kind]
  lines += ["", f"| top {top} layers | ms | share | forward ms | backward ms |",
            "|---|---|---|---|---|"]
  lines += [f"| {c.name} | {ms(c.seconds)} | {c.share:.0%} | "
            f"{ms(c.forward_seconds)} | {ms(c.backward_seconds)} |"
            for c in found.by_layer[:top]]
  return "\n".join(lines)
