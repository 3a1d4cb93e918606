"""Shared helpers for the system tests: tiny configs, hand-built batches, a
host-filled State (no XLA compile of `init`), fast-compiling jit."""

from __future__ import annotations

import functools
import weakref
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import common, pix2pix, unet_seg
from rsjax import mesh as mesh_lib
from rsjax.systems import base

FAST_COMPILE = {"xla_backend_optimization_level": 0,
                "xla_llvm_disable_expensive_passes": True}
fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
KEY = jax.random.key(0, impl="rbg")
TILE = 32
BATCH = 8


def gan_config(**overrides):
  """A tiny pix2pix config: unet (ngf 4, 5 downs), PatchGAN ndf 4, 32x32."""
  config = pix2pix.get_config()
  config.inputs = ("s1", "lulc", "dem")
  config.model.generator_kwargs = dict(ngf=4, num_downs=5)
  config.model.discriminator_kwargs = dict(ndf=4)
  config.total_steps = 100
  for network in ("generator", "discriminator"):
    config.optimizer[network].lr = 3e-3
  config.update_from_flattened_dict(overrides)
  return config


def segmentation_config(**overrides):
  config = unet_seg.get_config()
  config.inputs = ("s2", "s1")
  config.model.segmenter_kwargs = dict(base_features=4,
                                       channel_multipliers=(1, 2, 4))
  config.total_steps = 100
  config.optimizer.segmenter = common.adam(lr=1e-2)
  config.update_from_flattened_dict(overrides)
  return config


def make_batch(seed: int = 0, batch: int = BATCH, tile: int = TILE,
               mask=None) -> dict[str, np.ndarray]:
  """Normalized fields with a learnable structure: s2 is a smooth function of
  s1 and the land cover, and the land cover is readable from s2."""
  rng = np.random.default_rng(seed)
  lulc = rng.integers(0, 9, (batch, tile // 4, tile // 4))
  lulc = np.repeat(np.repeat(lulc, 4, 1), 4, 2).astype(np.uint8)
  s1 = rng.uniform(-1, 1, (batch, tile // 4, tile // 4, 2))
  s1 = np.repeat(np.repeat(s1, 4, 1), 4, 2).astype(np.float32)
  dem = rng.uniform(-1, 1, (batch, tile, tile, 4)).astype(np.float32)
  level = lulc[..., None].astype(np.float32) / 4.0 - 1.0
  s2 = np.concatenate([0.5 * s1 + 0.3 * level, 0.6 * level,
                       0.2 * s1[..., :1] - 0.5 * level], -1)
  out = dict(s2=np.tanh(s2).astype(np.float32), s1=s1, dem=dem, lulc=lulc,
             valid=np.ones((batch, tile, tile), np.uint8))
  if mask is not None:
    out["mask"] = np.asarray(mask, np.float32)
  return out


def padded_batches(make, seed: int):
  """(3 real examples, the same 3 and a padding row (mask 0) whose s2 is NaN)
  of `make(seed, batch=..., mask=...)`: eval steps must ignore the row."""
  real = make(seed, batch=3)
  padded = make(seed, batch=4, mask=[1, 1, 1, 0])
  for name, value in real.items():
    padded[name][:3] = value
  padded["s2"][3] = np.nan    # garbage in the padding row
  return real, padded


def _fill(tree, seed):
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if name in ("scale", "var", "sigma"):
      return jnp.ones(leaf.shape, leaf.dtype)
    if name in ("kernel", "u", "embedding") or name.startswith("decision"):
      fan_in = max(int(np.prod(leaf.shape[:-1])), 1) if name == "kernel" else 1
      return jnp.asarray(rng.normal(0, 0.5 / np.sqrt(fan_in), leaf.shape),
                         leaf.dtype)
    return jnp.zeros(leaf.shape, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, tree)


_ABSTRACT_STATES = weakref.WeakKeyDictionary()


def abstract_state(system, batch):
  """`jax.eval_shape(system.init, KEY, batch)`, traced once per system and
  batch shapes (tests fill one structure with several seeds)."""
  shapes = tuple((name, np.shape(value), np.asarray(value).dtype.str)
                 for name, value in sorted(batch.items()))
  known = _ABSTRACT_STATES.setdefault(system, {})
  if shapes not in known:
    known[shapes] = jax.eval_shape(system.init, KEY, batch)
  return known[shapes]


def host_state(system, batch, seed: int = 0) -> base.State:
  """`system.init`'s State structure with numpy-filled variables."""
  abstract = abstract_state(system, batch)
  params = _fill(abstract.params, seed)
  tx = system.tx if isinstance(system.tx, dict) else {"segmenter": system.tx}
  return base.State(
      step=jnp.zeros((), jnp.int32), rng=KEY, params=params,
      batch_stats=_fill(abstract.batch_stats, seed + 1),
      opt_state={net: tx[net].init(params[net]) for net in params},
      ema_params=(None if abstract.ema_params is None else
                  {"generator": params["generator"]}))


def assert_trees_close(a, b, atol, rtol=0.0, where=""):
  flat_a = jax.tree_util.tree_leaves_with_path(a)
  flat_b = jax.tree_util.tree_leaves(b)
  assert len(flat_a) == len(flat_b)
  for (path, x), y in zip(flat_a, flat_b):
    np.testing.assert_allclose(
        np.asarray(x), np.asarray(y), atol=atol, rtol=rtol,
        err_msg=f"{where}: {jax.tree_util.keystr(path)}" if where else
        jax.tree_util.keystr(path))


SGD_LR = 0.1
# Parameters are O(1) (see _fill): float32 rounding of p - lr g is an ulp of p
# (1.2e-7 at |p| ~ 1), hence STEP_ATOL. A sharded step sums each gradient in
# another order (per device, then across devices); the difference of two
# orders of n terms is at most about n eps sum|terms| (8192 pixels: 1e-3 of
# the sum) and typically sqrt(n) eps (1e-5): STEP_RTOL of the leaf's largest
# update lies between. A wrong reduction (a missing all-reduce, a gradient
# from one device's eighth of the batch) changes the step by O(1) of itself.
# BatchNorm running statistics (0.9 old + 0.1 a batch mean of O(1) values)
# round to 1e-7: STEP_ATOL; losses and metrics are means: atol = rtol = 1e-5.
STEP_ATOL = 1e-6
STEP_RTOL = 1e-4
# Kinks. L1 losses, ReLU, hinge and max are piecewise linear: values are
# continuous, but their gradient jumps where the argument crosses 0. The two
# summation orders give forward values that differ by ~1e-6 (relative), so an
# element that lies within that of a kink (e.g. a generator output within
# 1e-7 of its target: cycle_fusion, seed 2) takes the other branch in one of
# the two steps. That changes one of the n >= 2048 terms (8 examples x the
# positions of a layer) of a gradient sum of mixed signs, ~ 1/sqrt(n) of the
# sum: up to KINK_RTOL of the leaf's largest update (seen: 6e-3 and 1.3e-3).
# It is a chance event, of probability ~ (elements) x 1e-6: 2 of the 100
# system-seeds surveyed (5 systems x seeds 0-19, both meshes; cycle_fusion
# seed 2, csebgan seed 18 on fsdp), never two of one system. A wrong
# reduction is no chance event: it changes every seed's step (a per-device
# loss without the all-reduce: by 80-270 x the KINK_RTOL tolerance; a
# gradient 0.1 % too large: by 5-10 x the STEP_RTOL one). So every seed but
# one must agree to STEP_RTOL, and all to KINK_RTOL; forward values (metrics,
# BatchNorm statistics) are continuous at kinks and agree to float precision
# on every seed.
KINK_RTOL = 5e-2


def sgd_system(config):
  """The system with plain SGD (lr SGD_LR) in place of every Adam.

  Two steps that differ only in summation order (sharded or not) must agree
  to float precision; Adam's first update is lr * g / (|g| + 1e-8), which
  turns a round-off gradient (a bias that a normalization cancels) into a
  full step of either sign, so such comparisons run SGD, whose update is
  linear in the gradient."""
  with mock.patch.object(base, "adam", lambda *_: optax.sgd(SGD_LR)):
    return base.get_system(config)


SEEDS = range(5)
# Smallest parameter size sharded over 'fsdp' in the fsdp case: the tiny test
# networks have kernels of a few hundred elements, so this shards many of them
# (and leaves biases and norm scales replicated, as large models would).
FSDP_MIN_SIZE = 128


def assert_sharded_step_equals_single(system, state_for, batch_for, devices, *,
                                      seeds=SEEDS, single_step=None):
  """For every seed, one train step on one device equals the same step
  - with the batch split over the 8-device data mesh (state replicated), and
  - on a ('data' 4, 'fsdp' 2) mesh, the batch split over both axes and the
    State placed as the trainer places it (`mesh.state_shardings` with
    FSDP_MIN_SIZE, so params of the tiny networks really are split over
    'fsdp'; the step keeps those shardings as out_shardings):
  every State part and every metric (tolerances and the one kink seed allowed
  per mesh: see KINK_RTOL). `state_for(seed)` and `batch_for(seed)` give each
  seed its own parameter / statistics fill and its own batch, all of one
  structure, so each of the three jitted steps compiles once for all seeds.
  `single_step` (a jitted `system.train_step`) may be shared with other tests.
  Returns the single-device (state, metrics) of every seed."""
  seeds = list(seeds)
  assert len(seeds) >= 3 and len(set(seeds)) == len(seeds)
  single_step = single_step or fast_jit(system.train_step)
  data_mesh = mesh_lib.make_mesh((("data", -1), ("fsdp", 1)))
  fsdp_mesh = mesh_lib.make_mesh((("data", 4), (mesh_lib.FSDP_AXIS, 2)))
  meshes = {"data 8": [data_mesh, mesh_lib.replicated(data_mesh), None],
            "data 4 x fsdp 2": [fsdp_mesh, None, None]}
  off_seeds = {name: {} for name in meshes}    # seeds off by more than rtol
  results = []
  for seed in seeds:
    state, batch = state_for(seed), batch_for(seed)
    single = single_step(state, batch)
    for name, entry in meshes.items():
      mesh, shardings, step = entry
      if shardings is None:
        shardings = entry[1] = mesh_lib.state_shardings(
            jax.eval_shape(lambda: state), mesh, fsdp_min_size=FSDP_MIN_SIZE)
      if step is None:
        step = entry[2] = fast_jit(system.train_step, out_shardings=(
            shardings, mesh_lib.replicated(mesh)))
      sharded_batch = jax.device_put(batch, mesh_lib.batch_sharding(mesh))
      for value in jax.tree.leaves(sharded_batch):
        assert len(value.sharding.device_set) == len(devices)
      placed = jax.device_put(state, shardings)
      if mesh is fsdp_mesh:
        assert _split_over_fsdp(placed.params), "no param is split over fsdp"
      where = f"seed {seed}, mesh {name}"
      sharded_state, sharded_metrics = step(placed, sharded_batch)
      single_state, single_metrics = single
      off = []
      for part in ("params", "ema_params"):
        off += _update_errors(getattr(state, part), getattr(single_state, part),
                              getattr(sharded_state, part), part)
      kink = max(off, key=lambda x: x[1], default=(0.0, 0.0, ""))
      assert kink[1] <= 1, (f"{where}: {kink[2]} differs by {kink[1]:.3g} x "
                            f"(STEP_ATOL + KINK_RTOL x its largest update)")
      worst = max(off, default=(0.0, 0.0, ""))
      if worst[0] > 1:
        off_seeds[name][seed] = worst
      for part in ("batch_stats", "opt_state"):
        assert_trees_close(getattr(single_state, part),
                           getattr(sharded_state, part), atol=STEP_ATOL,
                           where=f"{where}: {part}")
      assert_trees_close(single_metrics, sharded_metrics, atol=1e-5, rtol=1e-5,
                         where=f"{where}: metrics")
    results.append(single)
  for name, off in off_seeds.items():
    assert len(off) <= 1, (
        f"mesh {name}: the sharded step differs from the single-device step "
        f"by more than STEP_ATOL + STEP_RTOL x the largest update on seeds "
        f"{sorted(off)} (a kink is a chance event of one seed; a wrong "
        f"reduction changes all): " + "; ".join(
            f"seed {seed}: {path} by {ratio:.3g} x the tolerance"
            for seed, (ratio, _, path) in sorted(off.items())))
  return results


def _split_over_fsdp(params) -> list[str]:
  """Paths of the param leaves whose devices hold only part of them."""
  return [jax.tree_util.keystr(path)
          for path, leaf in jax.tree_util.tree_leaves_with_path(params)
          if mesh_lib.FSDP_AXIS in jax.tree.leaves(tuple(leaf.sharding.spec))
          and leaf.addressable_shards[0].data.shape != leaf.shape]


def _update_errors(before, single, sharded, part):
  """Per leaf: (|single - sharded| / (STEP_ATOL + STEP_RTOL u),
  |single - sharded| / (STEP_ATOL + KINK_RTOL u), path), largest over the
  leaf's elements, where u is the leaf's largest update |single - before|."""
  leaves = jax.tree_util.tree_leaves_with_path(single)
  assert len(leaves) == len(jax.tree.leaves(sharded))
  out = []
  for (path, a), b, old in zip(leaves, jax.tree.leaves(sharded),
                               jax.tree.leaves(before)):
    a, b, old = np.asarray(a), np.asarray(b), np.asarray(old)
    assert a.shape == b.shape
    if not a.size:
      continue
    error, update = np.abs(a - b).max(), np.abs(a - old).max()
    error = error if np.isfinite(error) else np.inf
    out.append((float(error / (STEP_ATOL + STEP_RTOL * update)),
                float(error / (STEP_ATOL + KINK_RTOL * update)),
                part + jax.tree_util.keystr(path)))
  return out
