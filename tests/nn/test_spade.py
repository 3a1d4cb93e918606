"""SPADE (label map) and RS-SPADE (multi-source) generators."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.spade import (SPADEGenerator, decoder_multipliers,
                             upsample_nearest)
from zoo_checks import (abstract_output, abstract_variables,
                        assert_generator_bfloat16, assert_init_deterministic,
                        assert_jit_without_retrace, host_variables)

SMALL = dict(ngf=2, num_upsamplings=3, hidden=4, embed_features=4,
             spectral_norm=False)


def sources(size, batch=1, dem_size=None):
  key = jax.random.PRNGKey(0)
  return {"lulc": jax.nn.one_hot(jax.random.randint(key, (batch, size, size), 0, 9), 9),
          "sar": jax.random.normal(key, (batch, size, size, 2)),
          "dem": jax.random.normal(key, (batch, dem_size or size // 3 + 1,
                                         dem_size or size // 3 + 1, 4))}


def test_paper_size_channel_schedule_256():
  model = SPADEGenerator(out_channels=4, conditioning="label")
  labels = jax.ShapeDtypeStruct((1, 256, 256, 9), jnp.float32)
  params = abstract_variables(model, labels, train=False)["params"]["decoder"]
  assert decoder_multipliers(5) == (8, 4, 2, 1)
  assert params["stem"]["kernel"].shape == (3, 3, 9, 1024)
  widths = {name: params[name]["conv_1"]["conv"]["kernel"].shape[-1]
            for name in ("head_0", "middle_0", "middle_1", "up_0", "up_1",
                         "up_2", "up_3")}
  assert widths == {"head_0": 1024, "middle_0": 1024, "middle_1": 1024,
                    "up_0": 512, "up_1": 256, "up_2": 128, "up_3": 64}
  assert "conv_shortcut" in params["up_0"] and "conv_shortcut" not in params["middle_0"]
  assert params["up_0"]["norm_0"]["shared"]["kernel"].shape == (3, 3, 9, 128)
  assert params["to_image"]["kernel"].shape == (3, 3, 64, 4)


def test_rs_spade_multi_source_256_abstract():
  # Spectral norm changes no parameter shape; off, it traces faster.
  model = SPADEGenerator(out_channels=4, conditioning="multi_source",
                         spectral_norm=False)
  condition = {name: jax.ShapeDtypeStruct(a.shape, jnp.float32)
               for name, a in sources(256, dem_size=86).items()}
  variables = abstract_variables(model, condition, train=False)
  norm = variables["params"]["decoder"]["up_3"]["norm_1"]
  assert norm["embed_dem"]["kernel"].shape == (3, 3, 4, 64)
  assert norm["embed_lulc"]["kernel"].shape == (3, 3, 9, 64)
  assert norm["fuse"]["kernel"].shape == (3, 3, 192, 128)
  out = jax.eval_shape(lambda v, c: model.apply(v, c, train=False),
                       variables, condition)
  assert out.shape == (1, 256, 256, 4)


@pytest.mark.parametrize("names", [("lulc",), ("sar", "dem"), ("lulc", "sar", "dem")])
def test_multi_source_subsets_and_resolutions(names):
  model = SPADEGenerator(out_channels=4, conditioning="multi_source",
                         sources=names, **SMALL)
  condition = {name: sources(32)[name] for name in names}
  y = abstract_output(model, condition, train=False)
  # The output takes the finest source's size (DEM alone is 11 px: not /8).
  assert y.shape == (1, 32, 32, 4)


def test_multi_source_train_jit_no_retrace():
  model = SPADEGenerator(out_channels=4, conditioning="multi_source",
                         **dict(SMALL, spectral_norm=True, num_upsamplings=2))
  condition = sources(32, batch=2)
  variables = host_variables(model, condition, train=False)
  apply = lambda v, c: model.apply(v, c, train=True,  # noqa: E731
                                   mutable=["batch_stats"])
  (y, stats), (y2, _) = assert_jit_without_retrace(
      apply, variables, condition,
      perturb=lambda a: (jax.tree_util.tree_map(lambda x: x * 0.5, a[0]),))
  assert y.shape == (2, 32, 32, 4)
  assert not np.allclose(y, y2)
  assert "spectral_norm" in stats["batch_stats"]["decoder"]["head_0"]["conv_0"]


def test_deterministic_init_and_bfloat16():
  model = SPADEGenerator(out_channels=3, **dict(SMALL, num_upsamplings=2))
  labels = jax.random.normal(jax.random.PRNGKey(0), (1, 32, 32, 5))
  assert_init_deterministic(model.clone(num_upsamplings=1), labels[:, :4, :4],
                            train=False)
  assert_generator_bfloat16(model, labels, atol=0.1)


def test_clear_errors():
  with pytest.raises(ValueError, match="multiple of"):
    abstract_variables(SPADEGenerator(**SMALL), jnp.zeros((1, 36, 36, 2)),
                       train=False)
  with pytest.raises(ValueError, match="conditioning"):
    abstract_variables(SPADEGenerator(conditioning="sketch", **SMALL),
                       jnp.zeros((1, 32, 32, 2)), train=False)
  with pytest.raises(KeyError, match="dem"):
    abstract_variables(SPADEGenerator(conditioning="multi_source", **SMALL),
                       {"lulc": jnp.zeros((1, 32, 32, 9)),
                        "sar": jnp.zeros((1, 32, 32, 2))}, train=False)


@pytest.mark.parametrize("factor", [2, 3])
def test_upsample_nearest_repeats_each_pixel_with_its_gradient(factor):
  """The one-step broadcast equals repeating along H then W, and its
  gradient (each block summed) equals the repeats' gradient; values are
  multiples of 1/16, so every sum is exact."""
  rng = np.random.default_rng(0)
  x = (rng.integers(-16, 17, (2, 3, 5, 4)) / 16).astype(np.float32)
  weights = (rng.integers(-16, 17, (2, 3 * factor, 5 * factor, 4)) / 16
             ).astype(np.float32)
  repeat = lambda a: jnp.repeat(jnp.repeat(a, factor, axis=1), factor,  # noqa: E731
                                axis=2)
  np.testing.assert_array_equal(upsample_nearest(x, factor), repeat(x))
  grad = lambda f: jax.grad(lambda a: jnp.sum(f(a) * weights))(x)  # noqa: E731
  np.testing.assert_array_equal(
      grad(lambda a: upsample_nearest(a, factor)), grad(repeat))
