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


def test_ema_update_keeps_decay_on_the_old_average():
  """ema <- decay * ema + (1 - decay) * params (#19), against numbers written
  out by hand: decay 0.9 keeps 90 % of the old average. The reversed formula
  (decay on the new params) gives 0.1 / 9.1 / -1.9 here, far outside the
  tolerance. All values are exact in float32 up to one rounding of each of
  2 products and 1 sum, so 4 ulp of the largest magnitude (10) bounds the
  error: 4 * 2**-23 * 16 < 1e-5."""
  ema = {"a": jnp.asarray([1.0, 10.0], jnp.float32), "b": jnp.asarray(-2.0)}
  params = {"a": jnp.asarray([0.0, 1.0], jnp.float32), "b": jnp.asarray(-1.0)}
  out = base.ema_update(ema, params, 0.9)
  np.testing.assert_allclose(out["a"], [0.9, 9.1], rtol=0, atol=1e-5)
  np.testing.assert_allclose(out["b"], -1.9, rtol=0, atol=1e-5)
  # decay 0 is a copy of the new params; an asymmetric decay 0.25 as well.
  np.testing.assert_array_equal(base.ema_update(ema, params, 0.0)["a"], params["a"])
  np.testing.assert_allclose(base.ema_update(ema, params, 0.25)["a"],
                             [0.25, 3.25], rtol=0, atol=1e-5)
