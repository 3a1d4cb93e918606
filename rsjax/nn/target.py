"""The platform a step is traced for, which hardware-chosen layer forms read.

Issue 24. Some layers have two forms of the same function, one faster on a
TPU and one elsewhere (`rsjax.nn.fused_convs`, `rsjax.nn.space_to_depth`).
They choose while tracing: `is_tpu()` is the `target_platform` that
`rsjax.train.aot` sets while it compiles for a TPU topology on a CPU host,
else this host's default backend. JAX does not trace a function again for
another target, so `rsjax.train.aot` builds its jitted steps afresh for each
compile.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import jax

_TARGET = contextvars.ContextVar("rsjax_target_platform", default=None)


@contextlib.contextmanager
def target_platform(platform: str) -> Iterator[None]:
  """Layers traced in the block are compiled for `platform` ('tpu', 'cpu',
  'gpu'), whatever this host's devices are."""
  token = _TARGET.set(platform)
  try:
    yield
  finally:
    _TARGET.reset(token)


def is_tpu() -> bool:
  """Whether the traced step will run on TPU chips."""
  return (_TARGET.get() or jax.default_backend()) == "tpu"
