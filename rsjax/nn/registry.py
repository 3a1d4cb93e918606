"""Name -> model registries for `config.model.generator`, `.discriminator`,
`.segmenter` (a registry keyed by name).

Entries are lazy "module:attribute" strings plus default keyword arguments, so
importing the registry imports no model module, and a name whose module is
not yet written fails only when it is requested. An unknown name raises a
ValueError that lists the valid names.

  generators:     rs_spade, spade, senet, unet, drib, resnet
  discriminators: patchgan (pix2pix's 70x70), multiscale_patchgan,
                  patchgan_78 (the cloud-removal paper's Table 1)
  segmenters:     rs_unet, two_branch
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

Entry = tuple[str, Mapping[str, Any]]

GENERATORS: dict[str, Entry] = {
    "rs_spade": ("rsjax.nn.spade:SPADEGenerator", {"conditioning": "multi_source"}),
    "spade": ("rsjax.nn.spade:SPADEGenerator", {"conditioning": "label"}),
    "senet": ("rsjax.nn.senet:SENet", {}),
    "unet": ("rsjax.nn.unet:UNetGenerator", {}),
    "drib": ("rsjax.nn.drib:DRIBGenerator", {}),
    "resnet": ("rsjax.nn.resnet:ResnetGenerator", {}),
}
DISCRIMINATORS: dict[str, Entry] = {
    "patchgan": ("rsjax.nn.patchgan:PatchGAN", {}),
    "multiscale_patchgan": ("rsjax.nn.patchgan:MultiScalePatchGAN", {}),
    "patchgan_78": ("rsjax.nn.patchgan_78:PatchGAN78", {}),
}
SEGMENTERS: dict[str, Entry] = {
    "rs_unet": ("rsjax.nn.unet:RSUNet", {}),
    "two_branch": ("rsjax.nn.fusion:TwoBranchSegmenter", {}),
}


def resolve(target: str):
  """Import and return the attribute named by 'package.module:attribute'."""
  module_name, _, attribute = target.partition(":")
  module = importlib.import_module(module_name)
  try:
    return getattr(module, attribute)
  except AttributeError:
    raise ImportError(f"{module_name} has no attribute {attribute!r} "
                      f"(registry target {target!r})") from None


def _build(kind: str, table: Mapping[str, Entry], name: str, kwargs):
  if name not in table:
    raise ValueError(f"unknown {kind} {name!r}; valid {kind}s: "
                     f"{', '.join(sorted(table))}")
  target, defaults = table[name]
  return resolve(target)(**{**defaults, **kwargs})


def get_generator(name: str, **kwargs):
  """The generator module registered as `name`, built with `kwargs`."""
  return _build("generator", GENERATORS, name, kwargs)


def get_discriminator(name: str, **kwargs):
  """The discriminator module registered as `name`, built with `kwargs`."""
  return _build("discriminator", DISCRIMINATORS, name, kwargs)


def get_segmenter(name: str, **kwargs):
  """The segmentation module registered as `name`, built with `kwargs`."""
  return _build("segmenter", SEGMENTERS, name, kwargs)


def generator_names() -> list[str]:
  return sorted(GENERATORS)


def discriminator_names() -> list[str]:
  return sorted(DISCRIMINATORS)


def segmenter_names() -> list[str]:
  return sorted(SEGMENTERS)
