"""Model registries: names, lazy targets, defaults and clear errors."""

from __future__ import annotations

import importlib

import pytest

from rsjax.nn import registry


def test_names():
  assert registry.generator_names() == ["drib", "resnet", "rs_spade", "senet",
                                        "spade", "unet"]
  assert registry.discriminator_names() == ["multiscale_patchgan", "patchgan",
                                            "patchgan_78"]
  assert registry.segmenter_names() == ["rs_unet", "two_branch"]


@pytest.mark.parametrize("getter,kind", [
    (registry.get_generator, "generator"),
    (registry.get_discriminator, "discriminator"),
    (registry.get_segmenter, "segmenter")])
def test_unknown_name_lists_valid_names(getter, kind):
  with pytest.raises(ValueError) as error:
    getter("pix2pixhd")
  message = str(error.value)
  assert f"unknown {kind} 'pix2pixhd'" in message
  names = getattr(registry, f"{kind}_names")()
  assert all(name in message for name in names)


def test_defaults_and_overrides():
  from rsjax.nn.spade import SPADEGenerator
  rs_spade = registry.get_generator("rs_spade", ngf=8, sources=("sar",))
  assert isinstance(rs_spade, SPADEGenerator)
  assert rs_spade.conditioning == "multi_source" and rs_spade.ngf == 8
  assert registry.get_generator("spade").conditioning == "label"
  assert registry.get_generator("spade", conditioning="multi_source").conditioning \
      == "multi_source"
  assert type(registry.get_generator("drib", ngf=4)).__name__ == "DRIBGenerator"
  assert type(registry.get_generator("resnet")).__name__ == "ResnetGenerator"
  assert type(registry.get_generator("senet", num_classes=9)).__name__ == "SENet"
  assert type(registry.get_discriminator("multiscale_patchgan")).__name__ == \
      "MultiScalePatchGAN"
  assert type(registry.get_discriminator("patchgan_78", ndf=8)).__name__ == \
      "PatchGAN78"


def test_every_target_is_a_lazy_module_attribute_string():
  for table in (registry.GENERATORS, registry.DISCRIMINATORS, registry.SEGMENTERS):
    for target, defaults in table.values():
      module, _, attribute = target.partition(":")
      assert module.startswith("rsjax.nn.") and attribute
      assert isinstance(defaults, dict)


@pytest.mark.parametrize("table,name", [
    ("GENERATORS", "unet"), ("SEGMENTERS", "rs_unet"), ("SEGMENTERS", "two_branch")])
def test_other_modules_resolve(table, name):
  """The U-Net and fusion targets import and name a callable (a plain import:
  an ImportError of our own code fails here, it is never skipped)."""
  target, _ = getattr(registry, table)[name]
  module, _, attribute = target.partition(":")
  assert callable(getattr(importlib.import_module(module), attribute))
  assert callable(registry.resolve(target))


def test_resolve_reports_missing_attribute():
  with pytest.raises(ImportError, match="NoSuchModel"):
    registry.resolve("rsjax.nn.layers:NoSuchModel")
