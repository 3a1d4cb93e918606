"""rsjax.systems.base: State.step_rng's keys per step and per name."""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.systems import base


def _state(step: int = 3) -> base.State:
  return base.State(step=jnp.asarray(step, jnp.int32), rng=jax.random.key(0),
                    params={}, batch_stats={}, opt_state={})


def _data(key) -> np.ndarray:
  return np.asarray(jax.random.key_data(key))


def test_step_rng_hashes_the_whole_name():
  state = _state()
  # Names that share their first 4 bytes (or more) get different keys.
  names = ["stage1_dropout", "stage2_dropout", "dropout", "dropout2", "noise",
           "noise_b", "clouds", "crop", ""]
  keys = {name: _data(state.step_rng(name)) for name in names}
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      assert not np.array_equal(keys[a], keys[b]), (a, b)
  # The same name gives the same key; another step another one.
  np.testing.assert_array_equal(_data(state.step_rng("stage1_dropout")),
                                keys["stage1_dropout"])
  assert not np.array_equal(_data(_state(4).step_rng("stage1_dropout")),
                            keys["stage1_dropout"])


def test_step_rng_is_stable_across_processes_and_jit():
  """A fixed function of (rng, step, name): the same under jit and pinned to
  CRC-32 (not Python's per-process `hash`)."""
  state = _state()
  jitted = jax.jit(lambda s: s.step_rng("stage2_x"))(state)
  np.testing.assert_array_equal(_data(jitted), _data(state.step_rng("stage2_x")))
  expected = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                                zlib.crc32(b"stage2_x") & 0x7FFFFFFF)
  np.testing.assert_array_equal(_data(state.step_rng("stage2_x")),
                                _data(expected))
