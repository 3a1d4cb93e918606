"""A network's layer list as built, for the papers' layer-table tests.

`trace_layers(model, *inputs, **kwargs)` traces `model.init` (which
runs the forward once) at the given abstract input shapes with
`jax.make_jaxpr` (no compile, no real init) under
`flax.linen.intercept_methods`, and returns one `Layer`
per convolution, transposed convolution and dense layer, in call order:

  kind      'C' convolution, 'D' transposed convolution, 'F' dense
  k         kernel size (square kernels; dense: 0)
  cin/cout  channels in and out, from the input and the kernel
  stride    from the spatial sizes of the layer's input and output: a
            convolution's in/out ratio, a transposed convolution's out/in
  dilation  kernel dilation
  bias      whether the layer has a bias parameter
  norm      'batch' / 'instance' when such a normalization takes this
            layer's output directly (through spectral norm), else None
  affine    whether that normalization has its own scale and shift
  dropout   whether a dropout takes the normalization's output
  path      the module path (for messages)

`params` are the abstract parameters, so tests count them against a hand
count written from the paper's table. `pools` lists the max-pool windows
(kernel, stride) the forward performs, from its jaxpr.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax

KEY = jax.random.key(0, impl="rbg")
NORMS = {"BatchNorm": "batch", "InstanceNorm": "instance"}
WRAPPERS = ("SpectralNorm", "SpectralConv", "Normalization")


class Layer(NamedTuple):
  kind: str
  k: int
  cin: int
  cout: int
  stride: int
  dilation: int
  bias: bool
  norm: str | None
  affine: bool
  dropout: bool
  path: str

  def row(self):
    """The table row: what every paper table gives, and what the code adds."""
    return (self.kind, self.cin, self.cout, self.k, self.stride, self.dilation,
            self.bias, self.norm, self.affine, self.dropout)


class Trace(NamedTuple):
  layers: list[Layer]
  params: Any
  variables: Any
  output: Any
  pools: list[tuple[tuple[int, ...], tuple[int, ...]]]


def trace_layers(model, *inputs, **kwargs) -> Trace:
  """The layers `model.apply(variables, *inputs, **kwargs)` runs (abstract)."""
  calls = []

  def record(next_fun, args, call_kwargs, context):
    out = next_fun(*args, **call_kwargs)
    if context.method_name == "__call__":
      calls.append((context.module, args[0] if args else None, out))
    return out

  def init(*a):   # init runs the forward once: one trace gives everything
    with nn.intercept_methods(record):
      return model.init_with_output(KEY, *a, **kwargs)

  closed, (output, variables) = jax.make_jaxpr(init, return_shape=True)(*inputs)
  pools = list(_walk_pools(closed.jaxpr))
  return Trace(_layers(calls), variables["params"], variables, output, pools)


def _layers(calls):
  # `calls` holds every input and output, so their ids stay unique here.
  layers, produced_by, norm_out = {}, {}, {}
  order = []
  for module, x, out in calls:      # post-order: inner modules first
    name = type(module).__name__
    path = "/".join(module.path)
    if isinstance(module, (nn.Conv, nn.ConvTranspose, nn.Dense)):
      transposed = isinstance(module, nn.ConvTranspose)
      if isinstance(module, nn.Dense):
        kind, k, stride, dilation = "F", 0, 1, 1
      else:
        kind = "D" if transposed else "C"
        kh, kw = module.kernel_size
        assert kh == kw, path
        k = kh
        size_in, size_out = x.shape[1], out.shape[1]
        # Rounded: PyTorch-style padding 1 with a 4x4 kernel at stride 1
        # takes one pixel off (36 -> 35).
        stride = round(size_out / size_in if transposed else size_in / size_out)
        dilation = module.kernel_dilation or 1
        dilation = dilation if isinstance(dilation, int) else dilation[0]
      layers[path] = dict(kind=kind, k=k, cin=x.shape[-1], cout=out.shape[-1],
                          stride=stride, dilation=dilation,
                          bias=bool(module.use_bias), norm=None, affine=False,
                          dropout=False, path=path)
      if path not in order:   # spectral norm's init calls its conv twice
        order.append(path)
      produced_by[id(out)] = path
    elif name in WRAPPERS and id(out) not in produced_by:
      inner = [p for p in order if p.startswith(path + "/")]
      if inner and name != "Normalization":
        produced_by[id(out)] = inner[-1]
    if name in NORMS and id(x) in produced_by:
      layer = layers[produced_by[id(x)]]
      layer["norm"] = NORMS[name]
      layer["affine"] = bool(module.use_scale or module.use_bias)
      norm_out[id(out)] = layer
    if name == "Dropout" and id(x) in norm_out:
      norm_out[id(x)]["dropout"] = True
  return [Layer(**layers[p]) for p in order]


def _walk_pools(jaxpr):
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "reduce_window_max":
      yield (tuple(eqn.params["window_dimensions"][1:3]),
             tuple(eqn.params["window_strides"][1:3]))
    for value in eqn.params.values():
      for sub in value if isinstance(value, (list, tuple)) else (value,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _walk_pools(inner)


def count(params) -> int:
  """Scalars in a parameter pytree."""
  return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params))


def rows(layers):
  return [layer.row() for layer in layers]
