"""Mixed-precision layers whose weight gradients are float32 before they are all-reduced.

Issue 24, item 4. With `config.dtype = 'bfloat16'` the layers keep float32
parameters and compute in bfloat16. Flax casts the parameters to bfloat16
before the convolution, so autodiff produces each weight gradient as the
bfloat16 output of a convolution (or matmul, or bias reduction) over the
local batch; XLA's SPMD partitioner inserts the data-parallel all-reduce right
there, in bfloat16, and converts to float32 afterwards. On a large slice that
sums hundreds of bfloat16 partial gradients, each rounded to 8 bits of
mantissa.

The layers here compute the same forward function as `flax.linen.Conv`,
`ConvTranspose` and `Dense` with `dtype=bfloat16` (bit for bit: the inputs,
kernel and bias are cast to the compute dtype as Flax casts them), but their
custom VJPs produce the weight gradients in the parameters' dtype: the
weight-gradient convolution or matmul takes bfloat16 operands and accumulates
into a float32 result (`preferred_element_type`), which TPU MXUs do at no
extra cost (on GPUs unmeasured: BENCHMARKS.md, open items), and the bias
gradient is summed in float32. The all-reduce then
runs on float32 values. The input gradients (activations) stay in the compute
dtype.

`gradients_reduced_in('bfloat16')` (`config.grad_reduce_dtype`) restores
Flax's plain behaviour, for comparison or to halve the all-reduce bytes; it is
read when a step is traced (`traced_with_grad_dtype` wraps a step function).
In float32 runs the layers are plain Flax convolutions.

The parameter trees are those of the Flax modules (same names and shapes), so
checkpoints load either way.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn import space_to_depth

Dtype = Any

GRAD_REDUCE_DTYPES = ("float32", "bfloat16")

_REDUCE_IN_COMPUTE_DTYPE = contextvars.ContextVar(
    "rsjax_reduce_grads_in_compute_dtype", default=False)


def check_grad_reduce_dtype(name: str) -> None:
  """A ValueError naming `config.grad_reduce_dtype` unless `name` is valid."""
  if name not in GRAD_REDUCE_DTYPES:
    raise ValueError(f"config.grad_reduce_dtype must be one of "
                     f"{GRAD_REDUCE_DTYPES}, got {name!r}")


@contextlib.contextmanager
def gradients_reduced_in(name: str):
  """Within: weight gradients come out in float32 ('float32', the default) or
  in the compute dtype ('bfloat16', Flax's plain behaviour)."""
  check_grad_reduce_dtype(name)
  token = _REDUCE_IN_COMPUTE_DTYPE.set(name == "bfloat16")
  try:
    yield
  finally:
    _REDUCE_IN_COMPUTE_DTYPE.reset(token)


def traced_with_grad_dtype(fn: Callable, name: str) -> Callable:
  """`fn` traced under `gradients_reduced_in(name)`, for `jax.jit`."""
  check_grad_reduce_dtype(name)
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with gradients_reduced_in(name):
      return fn(*args, **kwargs)
  return wrapped


def _float32_grads(param_dtype, dtype) -> bool:
  return (jnp.dtype(param_dtype) != jnp.dtype(dtype)
          and not _REDUCE_IN_COMPUTE_DTYPE.get())


# -- convolution ------------------------------------------------------------

class ConvGeometry(NamedTuple):
  """A 2-D NHWC x HWIO convolution's static arguments (explicit padding)."""
  strides: tuple[int, int]
  padding: tuple[tuple[int, int], tuple[int, int]]
  lhs_dilation: tuple[int, int]
  rhs_dilation: tuple[int, int]
  feature_group_count: int


_NHWC = ("NHWC", "HWIO", "NHWC")
# The weight gradient as one convolution (JAX's own transpose rule): the
# input's channels act as its batch and the batch as the contracted feature,
# the output gradient acts as the kernel, the kernel's (h, w, in, out) is the
# result.
_WEIGHT_GRAD = ("CHWN", "IHWO", "HWNC")
_VALID = ConvGeometry((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)


def _plain_conv(lhs, rhs, geometry: ConvGeometry):
  return jax.lax.conv_general_dilated(
      lhs, rhs, geometry.strides, geometry.padding,
      lhs_dilation=geometry.lhs_dilation, rhs_dilation=geometry.rhs_dilation,
      dimension_numbers=_NHWC, feature_group_count=geometry.feature_group_count)


def _dilated(size: int, dilation: int) -> int:
  return 0 if size == 0 else 1 + dilation * (size - 1)


def conv_weight_grad(lhs, g, kernel_shape: Sequence[int],
                     geometry: ConvGeometry, dtype: Dtype = jnp.float32):
  """d(sum(conv(lhs, kernel) * g)) / d kernel, accumulated into `dtype`."""
  padding = []
  for axis in range(2):
    low = geometry.padding[axis][0]
    high = (_dilated(g.shape[1 + axis], geometry.strides[axis])
            - _dilated(lhs.shape[1 + axis], geometry.lhs_dilation[axis])
            + _dilated(kernel_shape[axis], geometry.rhs_dilation[axis])
            - low - 1)
    padding.append((low, high))
  return jax.lax.conv_general_dilated(
      lhs, g, window_strides=geometry.rhs_dilation, padding=padding,
      lhs_dilation=geometry.lhs_dilation, rhs_dilation=geometry.strides,
      dimension_numbers=_WEIGHT_GRAD,
      batch_group_count=geometry.feature_group_count,
      preferred_element_type=dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_float32_grad(lhs, kernel, geometry: ConvGeometry):
  return _plain_conv(lhs, kernel.astype(lhs.dtype), geometry)


def _conv_forward(lhs, kernel, geometry):
  return _conv_float32_grad(lhs, kernel, geometry), (lhs, kernel)


def _conv_backward(geometry, residuals, g):
  lhs, kernel = residuals
  _, lhs_vjp = jax.vjp(
      lambda x: _plain_conv(x, kernel.astype(lhs.dtype), geometry), lhs)
  (d_lhs,) = lhs_vjp(g)
  d_kernel = conv_weight_grad(lhs, g, kernel.shape, geometry, kernel.dtype)
  return d_lhs, d_kernel


_conv_float32_grad.defvjp(_conv_forward, _conv_backward)


def conv2d(x, kernel, geometry: ConvGeometry, dtype: Dtype):
  """`x` (NHWC) convolved with `kernel` (HWIO) in `dtype`; the kernel's
  gradient in the kernel's dtype (see the module docstring)."""
  x = x.astype(dtype)
  if _float32_grads(kernel.dtype, dtype):
    return _conv_float32_grad(x, kernel, geometry)
  return _plain_conv(x, kernel.astype(dtype), geometry)


# -- bias and matmul ----------------------------------------------------------

@jax.custom_vjp
def _add_bias_float32_grad(y, bias):
  return y + bias.astype(y.dtype)


def _add_bias_forward(y, bias):
  return _add_bias_float32_grad(y, bias), bias


def _add_bias_backward(bias, g):
  axes = tuple(range(g.ndim - 1))
  return g, jnp.sum(g.astype(bias.dtype), axis=axes)


_add_bias_float32_grad.defvjp(_add_bias_forward, _add_bias_backward)


def add_bias(y, bias):
  """`y + bias` over the last axis in y's dtype; the bias gradient summed in
  the bias's dtype."""
  if _float32_grads(bias.dtype, y.dtype):
    return _add_bias_float32_grad(y, bias)
  return y + bias.astype(y.dtype)


def _plain_matmul(x, kernel):
  return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))


@jax.custom_vjp
def _matmul_float32_grad(x, kernel):
  return _plain_matmul(x, kernel.astype(x.dtype))


def _matmul_forward(x, kernel):
  return _matmul_float32_grad(x, kernel), (x, kernel)


def _matmul_backward(residuals, g):
  x, kernel = residuals
  d_x = jax.lax.dot_general(g, kernel.astype(x.dtype),
                            (((g.ndim - 1,), (1,)), ((), ())))
  leading = tuple(range(x.ndim - 1))
  d_kernel = jax.lax.dot_general(x, g, ((leading, leading), ((), ())),
                                 preferred_element_type=kernel.dtype)
  return d_x, d_kernel


_matmul_float32_grad.defvjp(_matmul_forward, _matmul_backward)


def matmul(x, kernel, dtype: Dtype):
  """`x @ kernel` over x's last axis in `dtype`; the kernel's gradient in
  the kernel's dtype."""
  x = x.astype(dtype)
  if _float32_grads(kernel.dtype, dtype):
    return _matmul_float32_grad(x, kernel)
  return _plain_matmul(x, kernel.astype(dtype))


# -- Flax modules ---------------------------------------------------------------

def _pairs(value, name: str) -> tuple[int, int]:
  pair = (value, value) if isinstance(value, int) else tuple(value)
  if len(pair) != 2:
    raise ValueError(f"{name}: 2-D convolutions only, got {value!r}")
  return pair


def _explicit_padding(padding, in_shape, kernel_shape, strides, dilation):
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  if isinstance(padding, str):
    if padding not in ("SAME", "VALID"):
      raise ValueError(f"padding {padding!r}: 'SAME', 'VALID' or pixels")
    dilated = [_dilated(k, d) for k, d in zip(kernel_shape, dilation)]
    return tuple(jax.lax.padtype_to_pads(in_shape, dilated, strides, padding))
  return tuple(_pairs(p, "padding") if not isinstance(p, int) else (p, p)
               for p in padding)


def _biased(module, y):
  """`y` plus the module's bias parameter, if it has one."""
  if not module.use_bias:
    return y
  bias = module.param("bias", module.bias_init, (module.features,),
                      module.param_dtype)
  return add_bias(y, bias)


def _check_plain(module, inputs, unsupported: dict[str, Any]) -> None:
  if inputs.ndim != 4 and not isinstance(module, nn.Dense):
    raise ValueError(f"{type(module).__name__} {module.name}: NHWC inputs, "
                     f"got shape {inputs.shape}")
  used = [name for name, default in unsupported.items()
          if getattr(module, name) != default]
  if used:
    raise NotImplementedError(
        f"{type(module).__name__} {module.name}: {used} are not supported by "
        f"rsjax.nn.mixed_precision; use flax.linen directly")


class Conv(nn.Conv):
  """`flax.linen.Conv` (2-D, NHWC) with float32 weight gradients in mixed
  precision. Same parameters, same forward function. `space_to_depth`
  computes a stride-2 convolution of a few-channel input as a stride-1 one
  of its pixel-unshuffle (`rsjax.nn.space_to_depth`)."""
  space_to_depth: bool = False

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    _check_plain(self, inputs, {"mask": None, "input_dilation": 1,
                                "precision": None})
    kernel_size = _pairs(self.kernel_size, "kernel_size")
    strides = _pairs(self.strides or 1, "strides")
    dilation = _pairs(self.kernel_dilation or 1, "kernel_dilation")
    kernel = self.param(
        "kernel", self.kernel_init,
        kernel_size + (inputs.shape[-1] // self.feature_group_count,
                       self.features), self.param_dtype)
    dtype = self.dtype or jnp.result_type(inputs, kernel)
    padding = _explicit_padding(self.padding, inputs.shape[1:3], kernel_size,
                                strides, dilation)
    padded = tuple(size + low + high
                   for size, (low, high) in zip(inputs.shape[1:3], padding))
    if (self.feature_group_count == 1
        and space_to_depth.worthwhile(self.space_to_depth, inputs.shape[-1])
        and space_to_depth.applies(kernel_size, strides, dilation, padded)):
      x = space_to_depth.unshuffle(
          space_to_depth.pad(inputs.astype(dtype), padding))
      y = conv2d(x, space_to_depth.unshuffled_kernel(kernel), _VALID, dtype)
    else:
      geometry = ConvGeometry(strides, padding, (1, 1), dilation,
                              self.feature_group_count)
      y = conv2d(inputs, kernel, geometry, dtype)
    return _biased(self, y)


def conv_transpose_padding(kernel: int, stride: int, padding: str
                           ) -> tuple[int, int]:
  """The padding of the dilated input that `jax.lax.conv_transpose` uses."""
  if padding == "SAME":
    total = kernel + stride - 2
    low = kernel - 1 if stride > kernel - 1 else -(-total // 2)
  elif padding == "VALID":
    total = kernel + stride - 2 + max(kernel - stride, 0)
    low = kernel - 1
  else:
    raise ValueError(f"padding {padding!r}: 'SAME' or 'VALID'")
  return low, total - low


class ConvTranspose(nn.ConvTranspose):
  """`flax.linen.ConvTranspose` (2-D, NHWC, 'SAME' or 'VALID', kernel not
  flipped) with float32 weight gradients in mixed precision. Same
  parameters, same forward function."""

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    _check_plain(self, inputs, {"mask": None, "transpose_kernel": False,
                                "precision": None})
    kernel_size = _pairs(self.kernel_size, "kernel_size")
    strides = _pairs(self.strides or 1, "strides")
    dilation = _pairs(self.kernel_dilation or 1, "kernel_dilation")
    kernel = self.param("kernel", self.kernel_init,
                        kernel_size + (inputs.shape[-1], self.features),
                        self.param_dtype)
    dtype = self.dtype or jnp.result_type(inputs, kernel)
    padding = tuple(
        conv_transpose_padding(_dilated(k, d), s, self.padding)
        for k, s, d in zip(kernel_size, strides, dilation))
    geometry = ConvGeometry((1, 1), padding, strides, dilation, 1)
    y = conv2d(inputs, kernel, geometry, dtype)
    return _biased(self, y)


class Dense(nn.Dense):
  """`flax.linen.Dense` with float32 weight gradients in mixed precision.
  Same parameters, same forward function."""

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    _check_plain(self, inputs, {"precision": None})
    kernel = self.param("kernel", self.kernel_init,
                        (inputs.shape[-1], self.features), self.param_dtype)
    dtype = self.dtype or jnp.result_type(inputs, kernel)
    y = matmul(inputs, kernel, dtype)
    return _biased(self, y)
