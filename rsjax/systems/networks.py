"""The networks a config names, built from the `rsjax.nn` registry.

Every system builds its generators, discriminators and segmenters the same
way: `build_module(key, getter, name, kwargs, dtype)` looks the name up in
`rsjax.nn.registry` and turns an unknown name or a bad keyword into a
ValueError naming the config key; `config_kwargs` reads a `*_kwargs` entry
of the config; `generator_size_multiple` is what a generator's input tiles
must be divisible by (its downsampling depth).
"""

from __future__ import annotations

from typing import Any


def config_kwargs(config_dict) -> dict[str, Any]:
  """A ConfigDict / mapping of module kwargs as a plain dict (None: {})."""
  if config_dict is None:
    return {}
  return dict(config_dict.to_dict() if hasattr(config_dict, "to_dict")
              else config_dict)


def build_module(key: str, getter, name: str, kwargs: dict, dtype):
  """A registry module; errors (unknown name, bad kwargs) name `key`."""
  try:
    return getter(name, dtype=dtype, **kwargs)
  except (ValueError, TypeError) as error:
    raise ValueError(f"{key} = {name!r}: {error}") from error


def generator_size_multiple(module, name: str) -> int:
  """What H and W of the generator's input must be divisible by."""
  if hasattr(module, "num_downs"):
    return 2**module.num_downs                   # unet
  if hasattr(module, "num_upsamplings"):
    return 2**module.num_upsamplings             # spade, rs_spade, senet
  return {"drib": 8, "resnet": 4}.get(name, 1)
