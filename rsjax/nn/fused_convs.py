"""Several 3x3 convolutions computed as one: the same function and parameters.

Issue 24. A TPU lays the channels of a tensor along 128 lanes, so a
convolution over 2, 4 or 9 channels, or one giving 64, uses a small part of
its matrix unit, and two convolutions over the same input read that input
twice. RS-SPADE's modulation (Wang & Zhou, Fig. 5) has both: an embedding
convolution per source (LULC one-hot, SAR, DEM + terrain), and gamma and beta
convolutions over the same fused map (as SPADE, Park et al. 2019, Sec. 3).
Here they become:

- `shared_input`: convolutions of one input, as one convolution whose kernel
  is theirs concatenated along the output channels, split afterwards, each
  bias added to its own part (then each bias gradient is summed inside the
  fusion that computes its part's gradient: RS-SPADE's bf16 step 122.1 ->
  115.2 ms by the compiler's estimate, against the biases added before the
  split);
- `block_diagonal`: convolutions of different inputs of one size, as one
  convolution over the inputs concatenated along the channels, whose kernel
  holds each of theirs on the diagonal and zeros elsewhere (a zero block adds
  exact zeros, so every output is a sum of the same nonzero products).

They pay on a TPU (RS-SPADE's bf16 step: 1.14x by the compiler's estimate,
BENCHMARKS.md section 10) and not on XLA's CPU (the RS-SPADE demo step about
6 % slower), so a layer left to choose (`fused=None`) fuses when the step is
compiled for TPU chips: `preferred()`, read while tracing
(`rsjax.nn.target`); GPUs are unmeasured and keep the layers.

Each convolution keeps its own parameters, declared by `ConvParams` under the
name an `nn.Conv` of it would have (`<name>/kernel`, `<name>/bias`, the same
shapes, initializers and RNG streams), so a checkpoint of the layer-by-layer
form loads into the fused one and back. Only the order in which a compiler
adds the products may differ; with exactly representable values the forms
are equal bit for bit (`tests/nn/test_fused_convs.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn import mixed_precision
from rsjax.nn import target
from rsjax.nn.layers import normal_init

Dtype = Any
KERNEL_SIZE = 3


def preferred() -> bool:
  """Whether fused convolutions pay where the traced step will run: on TPU
  chips (`rsjax.nn.target`)."""
  return target.is_tpu()


def resolve(fused: bool | None) -> bool:
  """A layer's `fused` setting: as given, or `preferred()` for None."""
  return preferred() if fused is None else bool(fused)


class ConvParams(nn.Module):
  """The kernel (3, 3, in_features, features) and bias an `nn.Conv` of these
  sizes declares, with `rsjax.nn.layers.conv`'s initializers, for a
  convolution computed elsewhere."""
  features: int
  in_features: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    kernel = self.param(
        "kernel", normal_init,
        (KERNEL_SIZE, KERNEL_SIZE, self.in_features, self.features),
        jnp.float32)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,),
                      jnp.float32)
    return kernel, bias


_SAME_3X3 = mixed_precision.ConvGeometry(
    strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
    rhs_dilation=(1, 1), feature_group_count=1)


def _conv(x, kernel, bias, dtype):
  """A 3x3, stride 1, 'SAME' convolution plus bias, computed in `dtype` as
  `layers.conv(dtype=dtype)` computes it (float32 weight gradients)."""
  return mixed_precision.add_bias(
      mixed_precision.conv2d(x, kernel, _SAME_3X3, dtype), bias)


def shared_input(x: jax.Array, outputs: dict[str, int], *,
                 dtype: Dtype = jnp.float32) -> dict[str, jax.Array]:
  """{name: conv_name(x)} for 3x3 convolutions `name` with `outputs[name]`
  channels, computed as one convolution. Call inside a compact module: the
  parameters are its submodules `name`."""
  params = [ConvParams(features, x.shape[-1], name=name)()
            for name, features in outputs.items()]
  y = mixed_precision.conv2d(
      x, jnp.concatenate([k for k, _ in params], axis=-1), _SAME_3X3, dtype)
  # Each bias is added after the split: the same sums element by element,
  # but each bias gradient is then summed from its own output's gradient,
  # which the TPU compiler folds into the fusion computing that gradient,
  # instead of one more pass over the joined outputs' gradient.
  split = jnp.split(y, _offsets(outputs.values()), axis=-1)
  return {name: mixed_precision.add_bias(part, bias)
          for name, part, (_, bias) in zip(outputs, split, params)}


def block_diagonal(inputs: dict[str, jax.Array], features: int, *,
                   dtype: Dtype = jnp.float32) -> jax.Array:
  """The outputs of 3x3 convolutions `name` of `inputs[name]`, `features`
  channels each, concatenated in the order of `inputs` (inputs of one height
  and width), computed as one convolution over the inputs' concatenation.
  Call inside a compact module: the parameters are its submodules `name`."""
  shapes = {x.shape[:3] for x in inputs.values()}
  if len(shapes) != 1:
    raise ValueError(f"block_diagonal: the inputs differ in batch, height or "
                     f"width: { {n: x.shape for n, x in inputs.items()} }")
  count = len(inputs)
  kernels, biases = [], []
  for i, (name, x) in enumerate(inputs.items()):
    kernel, bias = ConvParams(features, x.shape[-1], name=name)()
    kernels.append(jnp.pad(kernel, ((0, 0), (0, 0), (0, 0),
                                    (i * features, (count - 1 - i) * features))))
    biases.append(bias)
  return _conv(jnp.concatenate(list(inputs.values()), axis=-1),
               jnp.concatenate(kernels, axis=2), jnp.concatenate(biases), dtype)


def _offsets(sizes: Sequence[int]) -> list[int]:
  """Where `jnp.split` cuts channels of these sizes apart."""
  return list(itertools.accumulate(sizes))[:-1]
