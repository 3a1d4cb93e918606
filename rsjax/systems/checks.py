"""Batch and config checks: clear errors for a batch or config a system
cannot take, written once.

Every system checks, before it traces a step, that the batch has the fields
its config reads, that they have the shapes it expects and that the tiles
fit its networks' downsampling. The checks read static shapes only, so they
work under jit and `jax.eval_shape`: a bad config or dataset fails at start
(in `init`), with a message that names the field, the config key and what
to change. `config_inputs` checks the input fields a config names when the
system is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rsjax.systems import inputs as inputs_lib


def config_inputs(config, output: str, what: str) -> tuple[str, ...]:
  """`config.inputs` as checked field names; a ValueError when one of them is
  `output`, the field the system predicts (`what` names it, e.g.
  'config.target'): no system takes its output as an input."""
  inputs = inputs_lib.check_field_names(config.inputs, "config.inputs")
  if output in inputs:
    raise ValueError(f"config.inputs {list(inputs)}: {output!r} is {what} and "
                     f"cannot also be an input")
  return inputs


def require_fields(batch: Mapping[str, Any], names: Iterable[str],
                   why: str) -> None:
  """KeyError naming the first of `names` the batch lacks; `why` says which
  config key asks for it."""
  for name in dict.fromkeys(names):
    if name not in batch:
      raise KeyError(f"batch has no field {name!r} ({why}); it has "
                     f"{sorted(batch)}: add it to config.data.fields")


def check_image(value, channels: int, what: str) -> None:
  """ValueError unless `value` is (B, H, W, channels)."""
  if value.ndim != 4 or value.shape[-1] != channels:
    raise ValueError(f"{what}: expected (B, H, W, {channels}), got shape "
                     f"{value.shape}")


def check_shape(value, expected: Sequence[tuple[int, ...]] | tuple[int, ...],
                what: str, note: str = "") -> None:
  """ValueError unless `value`'s shape is `expected` (or one of several)."""
  options = ([tuple(e) for e in expected] if expected and isinstance(
      expected[0], (tuple, list)) else [tuple(expected)])
  shape = tuple(value.shape)
  if shape not in options:
    note = f" {note}" if note else ""
    raise ValueError(f"{what}: expected shape {options[0]}{note}, got {shape}")


def check_tile_size(shape: Sequence[int], multiple: int, what: str,
                    hint: str = "") -> None:
  """ValueError unless H and W of a (B, H, W, ...) `shape` are multiples of
  `multiple`; `what` names the network(s) that need it."""
  height, width = shape[1:3]
  if height % multiple or width % multiple:
    hint = f" ({hint})" if hint else ""
    raise ValueError(f"{what} needs a tile size divisible by {multiple}, got "
                     f"{height}x{width}{hint}")
