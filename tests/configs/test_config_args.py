"""configs/variants.py: the one parser of `configs/<name>.py:<arg>` args."""

from __future__ import annotations

import importlib
import re

import pytest

from configs import variants

SPEC = variants.Spec(
    "configs/example.py",
    variants.OneOf("sources", ("s1", "lulc", "lulc+s1"), default="lulc+s1"),
    variants.Key("arch", ("drib-drib", "unet-drib"), default="drib-drib"),
    variants.Key("k", default=1, parse=int),
    variants.Flag("demo"),
    variants.Flag("128"))


def test_defaults():
  args = SPEC.parse(None)
  assert vars(args) == {"sources": "lulc+s1", "arch": "drib-drib", "k": 1,
                        "demo": False, "128": False}
  assert vars(SPEC.parse("")) == vars(args)


def test_every_kind_of_part():
  args = SPEC.parse("s1,demo,arch=unet-drib,k=3,128")
  assert (args.sources, args.arch, args.k, args.demo, args["128"]) == (
      "s1", "unet-drib", 3, True, True)
  assert args["sources"] == "s1"


def test_order_empty_parts_repeats():
  assert vars(SPEC.parse(",demo,,lulc,")) == vars(SPEC.parse("lulc,demo"))
  assert SPEC.parse("demo,demo").demo
  assert SPEC.parse("k=2,k=5").k == 5           # the last key=value wins


def test_free_one_of_takes_any_word_but_flags():
  spec = variants.Spec("configs/free.py", variants.OneOf("fusion", None, "concat"),
                       variants.Flag("demo"))
  assert spec.parse("demo").fusion == "concat"
  assert spec.parse("anything,demo").fusion == "anything"
  with pytest.raises(ValueError, match="more than one fusion: 'a' and 'b'"):
    spec.parse("a,b")


@pytest.mark.parametrize("arg, problem", [
    ("s2", "unknown variant 's2'"),
    ("demo,x=1", "unknown variant 'x=1'"),
    ("demo=1", "unknown variant 'demo=1'"),
    ("lulc, demo", "unknown variant ' demo'"),
    ("arch=drib", "bad arch='drib'"),
    ("arch=", "bad arch=''"),
    ("k=x", "bad k='x'"),
    ("s1,lulc", "more than one sources: 's1' and 'lulc'"),
])
def test_one_error_format(arg, problem):
  with pytest.raises(ValueError) as error:
    SPEC.parse(arg)
  message = str(error.value)
  assert message == (
      f"configs/example.py: {problem} in arg {arg!r}; valid parts, "
      f"comma-separated: one of s1, lulc, lulc+s1 (sources; default lulc+s1); "
      f"arch=<one of drib-drib, unet-drib> (default drib-drib); "
      f"k=<int> (default 1); demo; 128")


def test_bad_specs():
  with pytest.raises(ValueError, match="declared twice"):
    variants.Spec("c.py", variants.Flag("demo"), variants.Key("demo"))
  with pytest.raises(ValueError, match="belong to two parts"):
    variants.Spec("c.py", variants.Flag("s1"), variants.OneOf("s", ("s1",)))
  with pytest.raises(ValueError, match="at most one OneOf"):
    variants.Spec("c.py", variants.OneOf("a", None), variants.OneOf("b", None))


def test_renamed_spec_names_its_file():
  with pytest.raises(ValueError, match=r"^configs/other\.py: unknown variant"):
    SPEC.renamed("configs/other.py").parse("nope")


@pytest.mark.parametrize("name", [
    "augment", "cloud_removal", "csebgan", "cycle_fusion", "fusion_seg",
    "fusion_study", "pix2pix", "rs_spade", "spade_reference", "unet_seg"])
def test_every_config_parses_with_the_helper(name):
  module = importlib.import_module(f"configs.{name}")
  assert isinstance(module.ARGS, variants.Spec)
  assert module.ARGS.config == f"configs/{name}.py"
  with pytest.raises(ValueError, match=re.escape(
      f"configs/{name}.py: unknown variant 'nope=1' in arg ',nope=1'; "
      f"valid parts, comma-separated: ")):
    module.get_config(",nope=1")


@pytest.mark.parametrize("name, arg, check", [
    ("rs_spade", "lulc+s1,demo",
     lambda c: c.inputs == ("lulc", "s1") and c.data.batch_size == 4),
    ("pix2pix", "s1", lambda c: c.inputs == ("s1",)
     and c.model.generator == "unet"),
    ("unet_seg", "s2+s1", lambda c: c.inputs == ("s2", "s1")),
    ("fusion_seg", "cross_attention,demo",
     lambda c: c.model.segmenter_kwargs.fusion == "cross_attention"),
    ("csebgan", "demo,no_conductor", lambda c: not c.conductor.enabled),
    ("cycle_fusion", "st,cloudy,rgbn",
     lambda c: c.mode == "st" and c.cloudy and c.bands == (0, 1, 2, 3)),
    ("cloud_removal", "arch=none-drib,loss=l1-ssim,joint",
     lambda c: c.model.stage1.generator == "none"
     and c.loss.stage2.ssim == 100.0 and c.schedule == "joint"),
    ("spade_reference", "memory,128",
     lambda c: c.data.source == "memory" and c.data.tile_size == 128),
    ("augment", "full,k=3", lambda c: c.fractions == (1.0,)
     and c.generated_per_mask == 3),
    ("fusion_study", "demo", lambda c: c.segmentation.data.batch_size == 4),
])
def test_args_reach_the_config(name, arg, check):
  assert check(importlib.import_module(f"configs.{name}").get_config(arg))
