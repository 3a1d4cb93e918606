"""FIDELITY.md (issue 17): every paper table has its section, and every config
it names still exists.

The page maps each row of each table of the five papers to a config variant
and a command. These checks keep it true as configs change, without
training anything (configs are data; `get_config` only builds a ConfigDict):

- every `configs/<name>.py[:<variant>]` on the page parses, so a renamed or
  removed variant fails here;
- every `--config.<key>=` of a `python -m launch.*` command is a key of the
  config that command names;
- each paper has its section with a fixed list of tables (the papers' folder
  is outside the repository and absent on CI, so the list is written here);
- no row is `(pending)`; a row whose config is `none` (a baseline rsjax
  does not build) says why ("no config: ...").
"""

from __future__ import annotations

import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIDELITY = os.path.join(ROOT, "FIDELITY.md")
CONFIG_HELPERS = ("__init__", "common", "datasets", "variants")

PAPERS = {
    # paper file stem (its section heading names it): the tables it has
    "rs_spade_multisource_fusion": ("1", "2", "3"),
    "cloud_removal_two_gan_drib": ("1", "2", "3", "4", "5", "6"),
    "csebgan_semantic_embedding": ("I", "II", "III"),
    "residual_cycle_gan_sts_fusion": ("I", "II", "III", "IV", "V", "VI"),
    "review_optical_sar_fusion_segmentation": ("I", "II", "III"),
}

CONFIG_REF = re.compile(r"configs/(\w+)\.py(?::([\w+=,.-]*))?")
COMMAND = re.compile(r"python -m launch\.\w+[^`]*")
COMMAND_CONFIG = re.compile(r"--config[ =](configs/\w+\.py(?::[\w+=,.-]*)?)")
OVERRIDE = re.compile(r"--config\.([\w.]+)=")


def _text() -> str:
  with open(FIDELITY, encoding="utf-8") as f:
    return f.read()


def _config_refs(text: str) -> list[tuple[str, str | None]]:
  refs = set()
  for match in CONFIG_REF.finditer(text):
    name, variant = match.group(1), match.group(2)
    if name in CONFIG_HELPERS:
      continue
    if variant is not None:
      variant = variant.rstrip(",.") or None
    refs.add((name, variant))
  return sorted(refs, key=lambda r: (r[0], r[1] or ""))


def _get_config(name: str, variant: str | None):
  module = importlib.import_module(f"configs.{name}")
  return module.get_config(variant)


def _sections(text: str) -> dict[str, str]:
  """{paper stem: the text of its '## ... (stem)' section}."""
  parts = re.split(r"^## ", text, flags=re.M)
  sections = {}
  for part in parts[1:]:
    heading = part.splitlines()[0]
    match = re.search(r"\((\w+)\)\s*$", heading)
    if match:
      sections[match.group(1)] = part
  return sections


def test_page_names_configs():
  refs = _config_refs(_text())
  names = {name for name, _ in refs}
  assert {"rs_spade", "pix2pix", "augment", "cloud_removal", "csebgan",
          "cycle_fusion", "fusion_seg"} <= names, names


@pytest.mark.parametrize("name,variant", _config_refs(_text()))
def test_every_named_variant_parses(name, variant):
  path = os.path.join(ROOT, "configs", f"{name}.py")
  assert os.path.isfile(path), f"FIDELITY.md names configs/{name}.py: no such file"
  config = _get_config(name, variant)
  assert config is not None


def _has_key(config, dotted: str) -> bool:
  node = config
  for key in dotted.split("."):
    try:
      if key not in node:
        return False
      node = node[key]
    except TypeError:   # a leaf value, not a ConfigDict
      return False
  return True


def test_command_overrides_are_keys_of_their_config():
  checked = 0
  for command in COMMAND.findall(_text()):
    for segment in command.split("&&"):
      config_match = COMMAND_CONFIG.search(segment)
      keys = [k for k in OVERRIDE.findall(segment)]
      if config_match is None:
        continue
      file, _, variant = config_match.group(1).partition(":")
      name = os.path.basename(file)[:-3]
      config = _get_config(name, variant or None)
      for key in keys:
        assert _has_key(config, key), (
            f"FIDELITY.md: --config.{key} is not a key of "
            f"{config_match.group(1)} in: {segment.strip()}")
        checked += 1
  assert checked > 0


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_each_paper_has_its_section_and_tables(paper):
  sections = _sections(_text())
  assert paper in sections, (
      f"FIDELITY.md has no '## ... ({paper})' section; it has "
      f"{sorted(sections)}")
  found = re.findall(r"^### Table ([IVX0-9]+)\.", sections[paper], flags=re.M)
  assert tuple(found) == PAPERS[paper], (
      f"{paper}: tables {found}, expected {list(PAPERS[paper])}")


def test_every_row_has_a_config_or_says_why_not():
  """Issue 17: each baseline row either has a config or a line saying why
  not; no row is left '(pending)'."""
  rows = [line for line in _text().splitlines() if line.startswith("| ")
          and not line.startswith("| row ") and line.count("|") >= 7]
  pending = [line for line in rows if "(pending)" in line]
  assert not pending, f"rows still (pending): {pending}"
  without = [line for line in rows if line.split("|")[2].strip() == "none"]
  assert without, "the baselines without a config are listed"
  for line in without:
    assert "no config: " in line, f"a row without config or reason: {line}"
