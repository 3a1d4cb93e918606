"""Atomic writes: the target is complete or absent, never half-written."""

import os

import pytest

from rsjax.store import atomic


def _visible(folder):
  return sorted(os.listdir(folder))


def test_file_appears_only_when_complete(tmp_path):
  target = tmp_path / "sub" / "report.md"
  with atomic.atomic_path(target) as temporary:
    with open(temporary, "w") as f:
      f.write("half")
    assert not target.exists()          # not published while writing
    assert os.path.dirname(temporary) == str(target.parent)
  assert target.read_text() == "half"
  assert _visible(target.parent) == ["report.md"]


def test_error_leaves_the_old_version_and_no_leftover(tmp_path):
  target = tmp_path / "table.csv"
  atomic.write_text(target, "old")
  with pytest.raises(RuntimeError, match="killed"):
    with atomic.atomic_path(target) as temporary:
      with open(temporary, "w") as f:
        f.write("new, half")
      raise RuntimeError("killed")
  assert target.read_text() == "old"
  assert _visible(tmp_path) == ["table.csv"]


def test_nothing_written_is_an_error_naming_the_target(tmp_path):
  with pytest.raises(FileNotFoundError, match="empty.json"):
    with atomic.atomic_path(tmp_path / "empty.json"):
      pass
  assert _visible(tmp_path) == []


def test_directories_replace_the_old_one_whole(tmp_path):
  target = tmp_path / "arrays"
  for version in ("one", "two"):
    with atomic.atomic_path(target) as temporary:
      os.makedirs(temporary)
      (tmp_path / temporary / f"{version}.npy").write_text(version)
  assert _visible(target) == ["two.npy"]
  assert _visible(tmp_path) == ["arrays"]


def test_suffix_and_json(tmp_path):
  with atomic.atomic_path(tmp_path / "grid.png", suffix=".png") as temporary:
    assert temporary.endswith(".png")
    open(temporary, "wb").close()
  atomic.write_json(tmp_path / "scores.json", {"psnr": 20.5})
  assert (tmp_path / "scores.json").read_text() == '{\n  "psnr": 20.5\n}'
  assert _visible(tmp_path) == ["grid.png", "scores.json"]
