"""configs/spade_reference.py against the PyTorch original, NVlabs/SPADE.

The parameter counts below were printed by the original on this machine
(NVlabs/SPADE commit fecacc9, torch 2.15 CPU, set up by
benchmarks/peer_setup.sh):

  peers/venv/bin/python benchmarks/peer_spade_step.py --params --output_nc 3
  -> {"generator": 92239299, "discriminator": 5546114}
  peers/venv/bin/python benchmarks/peer_spade_step.py --params --output_nc 4
  -> {"generator": 92239876, "discriminator": 5548162}

(train.py's default options with --label_nc 9 --no_instance --no_vgg_loss;
output_nc 3 is the original as it ships, 4 is its conv_img patched to
--output_nc). Everything here is abstract (jax.eval_shape): no compute.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from configs import spade_reference
from rsjax.nn import registry
from rsjax.nn.layers import conv_specs, count_params
from rsjax.systems import base
from zoo_checks import abstract_variables

NVLABS_COUNTS = {3: {"generator": 92_239_299, "discriminator": 5_546_114},
                 4: {"generator": 92_239_876, "discriminator": 5_548_162}}
LABELS = spade_reference.LABEL_CLASSES


def _abstract_batch(tile: int = 128):
  return {"s2": jax.ShapeDtypeStruct((2, tile, tile, 4), jnp.float32),
          "lulc": jax.ShapeDtypeStruct((2, tile, tile), jnp.uint8),
          "valid": jax.ShapeDtypeStruct((2, tile, tile), jnp.float32)}


def test_config_system_matches_nvlabs_parameter_counts():
  system = base.get_system(spade_reference.get_config("128,memory"))
  state = jax.eval_shape(system.init, jax.random.PRNGKey(0), _abstract_batch())
  counts = {name: count_params(p) for name, p in state.params.items()}
  assert counts == NVLABS_COUNTS[4]


@pytest.mark.parametrize("out_channels", [3])
def test_modules_match_nvlabs_as_it_ships(out_channels):
  config = spade_reference.get_config()
  generator = registry.get_generator(
      "spade", out_channels=out_channels, **config.model.generator_kwargs)
  discriminator = registry.get_discriminator(
      "multiscale_patchgan", **config.model.discriminator_kwargs)
  labels = jax.ShapeDtypeStruct((1, 256, 256, LABELS), jnp.float32)
  image = jax.ShapeDtypeStruct((1, 256, 256, out_channels), jnp.float32)
  g_vars = abstract_variables(generator, labels, train=False)
  d_vars = abstract_variables(discriminator, labels, image, train=False)
  assert count_params(g_vars["params"]) == NVLABS_COUNTS[out_channels]["generator"]
  assert (count_params(d_vars["params"])
          == NVLABS_COUNTS[out_channels]["discriminator"])


def test_discriminator_spectral_norm_and_bias_only_where_nvlabs_puts_them():
  config = spade_reference.get_config()
  discriminator = registry.get_discriminator(
      "multiscale_patchgan", **config.model.discriminator_kwargs)
  labels = jax.ShapeDtypeStruct((1, 64, 64, LABELS), jnp.float32)
  image = jax.ShapeDtypeStruct((1, 64, 64, 4), jnp.float32)
  variables = abstract_variables(discriminator, labels, image, train=False)
  for scale in ("scale_0", "scale_1"):
    params = variables["params"][scale]
    stats = variables["batch_stats"][scale]
    # norm_D 'spectralinstance': conv_1..3 are spectrally normalized, have no
    # bias and an affine-free InstanceNorm; conv_0 and conv_4 are plain.
    assert sorted(stats) == ["conv_1", "conv_2", "conv_3"]
    for i in (0, 4):
      assert set(params[f"conv_{i}"]["conv"]) == {"kernel", "bias"}
    for i in (1, 2, 3):
      assert set(params[f"conv_{i}"]["conv"]) == {"kernel"}
    assert not any(name.startswith("norm_") for name in params)
  apply = lambda v, c, i: discriminator.apply(v, c, i, train=False)  # noqa: E731
  kernels = [s.kernel for s in conv_specs(apply, variables, labels, image)]
  assert kernels[:5] == [(4, 4, LABELS + 4, 64), (4, 4, 64, 128),
                         (4, 4, 128, 256), (4, 4, 256, 512), (4, 4, 512, 1)]
  assert len(kernels) == 10


def test_config_losses_and_optimizer_are_nvlabs_defaults():
  config = spade_reference.get_config()
  assert config.loss.adversarial == "hinge"
  assert config.loss.l1 == 0.0
  # lambda_feat 10, summed over 4 maps per scale: 40 x the mean over maps.
  assert config.loss.feature_matching == 40.0
  assert (config.optimizer.generator.lr, config.optimizer.discriminator.lr) == (
      1e-4, 4e-4)
  assert (config.optimizer.generator.b1, config.optimizer.generator.b2) == (
      0.0, 0.9)
  assert config.data.batch_size == 2
  with pytest.raises(ValueError, match="spade_reference.*unknown"):
    spade_reference.get_config("512")
