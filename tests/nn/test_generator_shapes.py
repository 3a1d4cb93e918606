"""The image generators' shape contract: the output keeps the input's batch,
height and width and has `out_channels` bands (abstract variables, no
compute). The layers themselves (kernels, channels, strides, biases, norms,
parameter counts) are checked against the papers' tables in
test_layer_tables.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from rsjax.nn.drib import DRIBGenerator
from rsjax.nn.resnet import ResnetGenerator
from rsjax.nn.spade import SPADEGenerator
from zoo_checks import abstract_output

SMALL_SPADE = dict(ngf=2, num_upsamplings=3, hidden=4, embed_features=4,
                   spectral_norm=False)

CASES = [  # (generator, input shape: N, H, W, C)
    (ResnetGenerator(out_channels=1, ngf=4, num_blocks=2), (2, 32, 32, 2)),
    (ResnetGenerator(out_channels=4, ngf=4, num_blocks=2), (2, 64, 64, 9)),
    (ResnetGenerator(out_channels=6, ngf=8), (1, 128, 128, 13)),
    (DRIBGenerator(out_channels=4, ngf=4, num_blocks=2), (2, 32, 32, 1)),
    (DRIBGenerator(out_channels=4, ngf=4, num_blocks=2), (2, 64, 64, 6)),
    (DRIBGenerator(out_channels=13, ngf=8), (2, 128, 128, 2)),
    # label conditioning: the condition is the input
    (SPADEGenerator(out_channels=3, **SMALL_SPADE), (2, 32, 32, 1)),
    (SPADEGenerator(out_channels=4, **SMALL_SPADE), (2, 64, 64, 9)),
    (SPADEGenerator(out_channels=13, ngf=4), (2, 128, 128, 6)),
]


@pytest.mark.parametrize(
    "model,shape", CASES,
    ids=[f"{type(m).__name__}-{s[3]}x{s[1]}" for m, s in CASES])
def test_output_keeps_size_with_out_channels(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  y = abstract_output(model, x, train=False)
  assert y.shape == (*shape[:3], model.out_channels)
