"""The experiment configs: data that imports nothing from rsjax, a small shared
base, each system's keys in its own file, every documented arg working."""

from __future__ import annotations

import ast
import functools
import glob
import importlib
import os
import re
import subprocess
import sys

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from configs import cloud_removal, common, fusion_seg, variants

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))
HELPERS = ("__init__", "common", "datasets", "variants")
EXPERIMENTS = sorted(
    os.path.basename(f)[:-3] for f in CONFIG_FILES
    if os.path.basename(f)[:-3] not in HELPERS)
SYSTEM_CONFIGS = ("cloud_removal", "csebgan", "cycle_fusion", "fusion_seg",
                  "pix2pix", "rs_spade", "spade_reference", "unet_seg")
STUDIES = ("augment", "fusion_study")     # hold a segmentation config


def _imports(path: str) -> set[str]:
  tree = ast.parse(open(path).read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
  return names


def test_every_config_file_is_known():
  assert set(EXPERIMENTS) == set(SYSTEM_CONFIGS) | set(STUDIES)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_configs_import_nothing_from_the_library(path):
  library = {n for n in _imports(path)
             if n.split(".")[0] in ("rsjax", "data_builders", "launch")}
  assert not library, f"{path} imports {sorted(library)}: configs are data"


def test_loading_every_config_loads_no_library_module():
  code = ("import sys\n"
          f"for name in {EXPERIMENTS!r}:\n"
          "  module = __import__('configs.' + name, fromlist=['get_config'])\n"
          "  module.get_config()\n"
          "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rsjax'))\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                       capture_output=True, text=True).stdout
  assert out.strip() == "[]"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_every_config_file_has_a_docstring(path):
  doc = ast.get_docstring(ast.parse(open(path).read(), path))
  assert doc, f"{path} has no module docstring"
  name = os.path.basename(path)[:-3]
  if name not in HELPERS:
    assert re.search(rf"python (-m \S+ )?.*configs/{name}\.py", doc), (
        f"{path}: the docstring has no run command")


def _config(name: str, arg: str | None = None):
  return importlib.import_module(f"configs.{name}").get_config(arg)


def _system_configs():
  """(config file, arg, config) of every system config and study, paper and
  demo size."""
  for name in SYSTEM_CONFIGS:
    small = "128,memory" if name == "spade_reference" else "demo"
    for arg in (None, small):
      yield name, arg, _config(name, arg)
  for name in STUDIES:
    for arg in (None, "demo"):
      yield name, arg, _config(name, arg).segmentation


def test_data_block_is_the_pipelines_defaults_but_the_dataset():
  from rsjax.data import pipeline
  defaults = pipeline.default_config().to_dict()
  data = common.data_config().to_dict()
  # The trainer evaluates on config.eval_split; the pipeline's own default
  # split for evaluation iterators is not a config key.
  assert set(data) == set(defaults) - {"eval_split"}
  differ = sorted(k for k in data if data[k] != defaults[k])
  assert differ == sorted(common.DATA_OVERRIDES)


def test_every_config_has_the_shared_keys_and_one_eval_split():
  shared = set(common.base_config("x"))
  for name, arg, config in _system_configs():
    assert shared <= set(config), (name, arg, shared - set(config))
    assert set(config.data) == set(common.data_config()), (name, arg)
    assert config.eval_split == "validation"


def test_each_system_config_builds_its_system():
  """Every key a system reads is in its config (attribute reads fail
  otherwise); nothing is initialised."""
  from rsjax.systems import base
  from rsjax.train import training_length
  for name, arg, config in _system_configs():
    # A length in epochs becomes steps only once a dataset is known.
    system = base.get_system(training_length.stand_in(config))
    assert system is not None, (name, arg)


NETWORKS = {
    "paired_gan": {"generator", "discriminator"},
    "segmentation": {"segmenter"},
    "csebgan": {"generator", "discriminator", "conductor"},
    "cycle_fusion": {"generator", "discriminator"},
    "cloud_removal": {f"stage{i}_{n}" for i in (1, 2)
                      for n in ("generator", "discriminator")},
}


def test_system_keys_stay_with_their_system():
  """One optimizer entry per network the system trains; EMA only where the
  system reads it."""
  for name, arg, config in _system_configs():
    assert set(config.optimizer) == NETWORKS[config.system], (name, arg)
    assert ("ema_decay" in config) == (
        config.system in ("paired_gan", "cycle_fusion", "cloud_removal")), (
            name, arg)


def test_names_that_mirror_library_tables():
  from rsjax.nn import fusion
  from rsjax.systems.cloud_removal import clouds as cloud_inputs
  assert fusion_seg.FUSION_MODES == fusion.FUSION_MODES
  assert cloud_removal.SYNTHETIC_CLOUDS == cloud_inputs.DEFAULT_SYNTHETIC


def test_gate_of_gated_fusion_can_be_overridden():
  """The docstring's --config.model.segmenter_kwargs.gate=complementary needs
  the key in the config (ml_collections refuses unknown keys)."""
  from rsjax.nn import fusion
  config = fusion_seg.get_config("gated")
  assert (config.model.segmenter_kwargs.gate
          == fusion.TwoBranchSegmenter.gate)


def _documented_args():
  """(config, arg) of every `configs/<name>.py:<arg>` in the docs."""
  docs = [os.path.join(ROOT, "README.md"), *CONFIG_FILES,
          *glob.glob(os.path.join(ROOT, "docs", "*.md")),
          *glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")),
          *glob.glob(os.path.join(ROOT, "launch", "*")),
          *glob.glob(os.path.join(ROOT, "benchmarks", "*"))]
  found = set()
  for path in docs:
    if os.path.isfile(path):
      text = open(path, encoding="utf-8", errors="replace").read()
      for name, arg in re.findall(r"configs/(\w+)\.py:([\w+=,.-]+)", text):
        found.add((name, arg.rstrip(".,")))
      # A config by name: `--config rs_spade:sen12ms`.
      for name, arg in re.findall(r"--config[ =](\w+):([\w+=,.-]+)", text):
        found.add((name, arg.rstrip(".,")))
  return sorted(found)


def test_documented_args_parse():
  args = _documented_args()
  assert ("rs_spade", "lulc+s1") in args and ("cloud_removal", "arch=unet-drib,loss=l1-l1") in args
  for name, arg in args:
    _config(name, arg)


# ------------------------------------------- keys whose default is None --
#
# ml_collections cannot override a key holding a bare None from the command
# line (it does not know its type): each is `common.optional(<type>)`.

SAMPLES = {int: ("3", 3), float: ("0.5", 0.5), bool: ("true", True),
           str: ("x", "x"), tuple: ("(1.0, 2.0)", (1.0, 2.0)),
           object: ("{'a': 1}", {"a": 1})}
"""The declared types the command line sets: (a value as typed, as parsed)."""


def _variant_args(spec: variants.Spec) -> list[str]:
  """'' and each part of `spec` alone (each value of a group or key that
  lists its values, fusion_seg's any-name group its FUSION_MODES), each also
  with 'demo' where the config has that flag."""
  words = [""]
  for part in spec.parts:
    if isinstance(part, variants.Flag):
      words.append(part.name)
    elif isinstance(part, variants.OneOf):
      words += part.values or fusion_seg.FUSION_MODES
    elif part.values:
      words += [f"{part.name}={value}" for value in part.values]
  demo = any(p.name == "demo" for p in spec.parts)
  return words + [f"{w},demo" for w in words if demo and w not in ("", "demo")]


def _every_variant():
  """(config file, arg, config) of every config file and variant."""
  for name in EXPERIMENTS:
    module = importlib.import_module(f"configs.{name}")
    for arg in _variant_args(module.ARGS):
      yield name, arg, module.get_config(arg)


def _none_keys(config, prefix: str = "") -> list[tuple[str, type | None]]:
  """(dotted key, declared type) of every key of `config` whose value is
  None; the type is None for a bare None."""
  found = []
  for key, value in config.items(preserve_field_references=True):
    path = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      found += _none_keys(value, f"{path}.")
    elif isinstance(value, ml_collections.FieldReference):
      if value.get() is None:
        found.append((path, value.get_type()))
    elif value is None:
      found.append((path, None))
  return found


def test_the_walk_finds_a_bare_none():
  config = common.base_config("x")
  config.data.new_key = None
  config.typed = common.optional(int)
  config.typed_then_set = common.optional(int)
  config.typed_then_set = 2
  assert ("data.new_key", None) in _none_keys(config)
  assert ("num_eval_batches", int) in _none_keys(config)
  assert ("typed", int) in _none_keys(config)
  assert "typed_then_set" not in dict(_none_keys(config))


def test_every_none_key_has_a_type_the_command_line_sets():
  untyped = sorted(
      f"configs/{name}.py{':' if arg else ''}{arg} {key} ({declared})"
      for name, arg, config in _every_variant()
      for key, declared in _none_keys(config) if declared not in SAMPLES)
  assert not untyped, (
      "keys holding a None that --config.<key>=<value> cannot set; declare "
      "them configs.common.optional(<type>):\n" + "\n".join(untyped))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_none_key_is_set_from_the_command_line(name):
  keys = dict(_none_keys(_config(name)))
  assert keys
  path = os.path.join(ROOT, "configs", f"{name}.py")
  argv = ["prog", f"--config={path}"] + [
      f"--config.{key}={SAMPLES[declared][0]}"
      for key, declared in keys.items()]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file",
                                  flag_values=values, sys_argv=argv)
  values(argv)
  config = values["config"].value
  for key, declared in keys.items():
    value = functools.reduce(getattr, key.split("."), config)
    assert value == SAMPLES[declared][1], key
