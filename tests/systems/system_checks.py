"""Shared helpers for the system tests: tiny configs, hand-built batches, a
host-filled State (no XLA compile of `init`), fast-compiling jit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from configs import common
from rsjax.systems import base

FAST_COMPILE = {"xla_backend_optimization_level": 0,
                "xla_llvm_disable_expensive_passes": True}
fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
KEY = jax.random.key(0, impl="rbg")
TILE = 32
BATCH = 8


def gan_config(**overrides):
  """A tiny pix2pix config: unet (ngf 4, 5 downs), PatchGAN ndf 4, 32x32."""
  config = common.base_config()
  config.inputs = ("s1", "lulc", "dem")
  config.model.generator_kwargs = dict(ngf=4, num_downs=5)
  config.model.discriminator_kwargs = dict(ndf=4)
  config.total_steps = 100
  for network in ("generator", "discriminator", "segmenter"):
    config.optimizer[network].lr = 3e-3
  config.update_from_flattened_dict(overrides)
  return config


def segmentation_config(**overrides):
  config = common.base_config()
  config.system = "segmentation"
  config.inputs = ("s2", "s1")
  config.model.segmenter_kwargs = dict(base_features=4,
                                       channel_multipliers=(1, 2, 4))
  config.total_steps = 100
  config.optimizer.segmenter.lr = 1e-2
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
