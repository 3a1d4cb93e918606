"""Shared helpers for the system tests: tiny configs, hand-built batches, a
host-filled State (no XLA compile of `init`), fast-compiling jit."""

from __future__ import annotations

import functools
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


def host_state(system, batch, seed: int = 0) -> base.State:
  """`system.init`'s State structure with numpy-filled variables."""
  abstract = jax.eval_shape(system.init, KEY, batch)
  params = _fill(abstract.params, seed)
  tx = system.tx if isinstance(system.tx, dict) else {"segmenter": system.tx}
  return base.State(
      step=jnp.zeros((), jnp.int32), rng=KEY, params=params,
      batch_stats=_fill(abstract.batch_stats, seed + 1),
      opt_state={net: tx[net].init(params[net]) for net in params},
      ema_params=(None if abstract.ema_params is None else
                  {"generator": params["generator"]}))


def assert_trees_close(a, b, atol, rtol=0.0):
  flat_a = jax.tree_util.tree_leaves_with_path(a)
  flat_b = jax.tree_util.tree_leaves(b)
  assert len(flat_a) == len(flat_b)
  for (path, x), y in zip(flat_a, flat_b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=rtol,
                               err_msg=jax.tree_util.keystr(path))


SGD_LR = 0.1
# Parameters are O(1) (see _fill): float32 rounding of p - lr g is an ulp of p
# (1.2e-7 at |p| ~ 1), hence STEP_ATOL. A sharded step sums each gradient in
# another order (per device, then across devices); the difference of two
# orders of n terms is at most about n eps sum|terms| (8192 pixels: 1e-3 of
# the sum) and typically sqrt(n) eps (1e-5): STEP_RTOL of the leaf's largest
# update lies between. A wrong reduction (a missing all-reduce, a gradient
# from one device's eighth of the batch) changes the step by O(1) of itself.
# Statistics (BatchNorm, EMA) are means of O(1) values; losses are per-pixel
# means: rtol 1e-5.
STEP_ATOL = 1e-6
STEP_RTOL = 1e-4


def sgd_system(config):
  """The system with plain SGD (lr SGD_LR) in place of every Adam.

  Two steps that differ only in summation order (sharded or not) must agree
  to float precision; Adam's first update is lr * g / (|g| + 1e-8), which
  turns a round-off gradient (a bias that a normalization cancels) into a
  full step of either sign, so such comparisons run SGD, whose update is
  linear in the gradient."""
  with mock.patch.object(base, "adam", lambda *_: optax.sgd(SGD_LR)):
    return base.get_system(config)


def assert_sharded_step_equals_single(system, state, batch, devices):
  """One train step on one device and the same step with the batch split over
  the 8-device data mesh agree: every State part and every metric. Returns the
  single-device (state, metrics)."""
  step = fast_jit(system.train_step)
  single_state, single_metrics = step(jax.device_put(state, devices[0]),
                                      jax.device_put(batch, devices[0]))
  mesh = mesh_lib.make_mesh((("data", -1), ("fsdp", 1)))
  sharded_batch = jax.device_put(batch, mesh_lib.batch_sharding(mesh))
  for value in jax.tree.leaves(sharded_batch):
    assert len(value.sharding.device_set) == len(devices)
  sharded_state, sharded_metrics = step(
      jax.device_put(state, mesh_lib.replicated(mesh)), sharded_batch)
  for name in ("params", "ema_params"):
    _assert_updates_close(getattr(state, name), getattr(single_state, name),
                          getattr(sharded_state, name))
  for name in ("batch_stats", "opt_state"):
    assert_trees_close(getattr(single_state, name),
                       getattr(sharded_state, name), atol=STEP_ATOL)
  assert_trees_close(single_metrics, sharded_metrics, atol=1e-5, rtol=1e-5)
  return single_state, single_metrics


def _assert_updates_close(before, single, sharded):
  """Leaf by leaf: |single - sharded| <= STEP_ATOL + STEP_RTOL * the leaf's
  largest update |single - before|."""
  leaves = jax.tree_util.tree_leaves_with_path(single)
  assert len(leaves) == len(jax.tree.leaves(sharded))
  for (path, a), b, old in zip(leaves, jax.tree.leaves(sharded),
                               jax.tree.leaves(before)):
    a, b, old = np.asarray(a), np.asarray(b), np.asarray(old)
    np.testing.assert_allclose(
        a, b, rtol=0, atol=STEP_ATOL + STEP_RTOL * np.abs(a - old).max(),
        err_msg=jax.tree_util.keystr(path))
