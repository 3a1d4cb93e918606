"""Tests of the SEN1-2 builder on dummy data in the published layout."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.sen1_2 import sen1_2_dataset_builder


class Sen12BuilderTest(tfds.testing.DatasetBuilderTestCase):
  """Builds the dummy data: 6 patches of 4 scenes, split by scene."""
  DATASET_CLASS = sen1_2_dataset_builder.Builder
  SPLITS = {"train": 3, "validation": 2, "test": 1}
  # 'paper' needs 23,890 pairs: test_the_paper_config_builds_its_split_sizes
  # builds its planning at a size the dummy archive holds.
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]


def test_missing_manual_dir_names_the_season_folders(tmp_path):
  builder = sen1_2_dataset_builder.Builder(data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "empty")
  (tmp_path / "empty" / "ROIs1158_spring").mkdir(parents=True)
  with pytest.raises(public_common.ManualDataError,
                     match="ROIs1868_summer"):
    builder.download_and_prepare(download_config=config)


def test_s1_without_s2_names_the_missing_folder(tmp_path):
  scene = tmp_path / "manual" / "ROIs1158_spring" / "s1_3"
  scene.mkdir(parents=True)
  (scene / "ROIs1158_spring_s1_3_p1.png").write_bytes(b"")
  builder = sen1_2_dataset_builder.Builder(data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
  with pytest.raises(public_common.ManualDataError, match="s2_3"):
    builder.download_and_prepare(download_config=config)


def test_stored_pixels_are_an_independent_pil_read(tmp_path):
  """Every stored pixel of every dummy pair equals a plain PIL read of its PNG:
  SEN1-2 (Schmitt et al. 2018) publishes 8-bit images, s1 one grey VV band,
  s2 RGB (B4, B3, B2) in the PNG's channel order, and the builder stores them
  unconverted (lossless PNG encoding in TFDS). Integer data: exact. A swapped
  channel, a flip, s1 and s2 mixed up or a rescaling fails.
  """
  import numpy as np
  from etils import epath
  from PIL import Image

  manual = epath.Path(__file__).parent / "dummy_data"
  builder = sen1_2_dataset_builder.Builder(data_dir=str(tmp_path))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual))
  checked = 0
  for split in ("train", "validation", "test"):
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
      season = example["season"].decode()
      scene, patch = int(example["scene"]), int(example["patch"])
      for name, mode in (("s1", "L"), ("s2", "RGB")):
        path = (manual / season / f"{name}_{scene}"
                / f"{season}_{name}_{scene}_p{patch}.png")
        with Image.open(str(path)) as image:
          assert image.mode == mode  # the published 8-bit modes: no convert
          expected = np.asarray(image)
        expected = expected.reshape(256, 256, -1)
        assert len(np.unique(expected)) > 10  # real pixels, not a constant
        assert example[name].dtype == np.uint8
        np.testing.assert_array_equal(example[name], expected,
                                      err_msg=str(path))
      checked += 1
  assert checked == 6


def _patches(counts):
  """Fake patches: {scene name: patch count} -> sen12_common.Patch list."""
  from data_builders import sen12_common
  return [sen12_common.Patch("ROIs1158_spring", scene, k, {})
          for scene, n in counts.items() for k in range(n, 0, -1)]


def test_planned_split_sizes_are_exact_and_never_share_a_scene():
  """Scenes in the seed's hash order fill train, validation, test; the scene
  that completes a split gives its lowest-numbered patches and the rest of it
  is left out. Checked against the order computed here from public_common's
  hash, by hand."""
  patches = _patches({scene: 3 for scene in range(1, 9)})     # 8 scenes x 3
  plan = sen1_2_dataset_builder.plan_split_sizes(patches, (7, 2, 4), seed=3)
  assert {s: len(p) for s, p in plan.items()} == {
      "train": 7, "validation": 2, "test": 4}
  hash_unit = public_common._hash_unit  # noqa: SLF001
  order = sorted({p.group for p in patches}, key=lambda g: (hash_unit(3, g), g))
  # train: 3 + 3 + the first 1 of the third scene; validation: 2 of the
  # fourth; test: 3 of the fifth + 1 of the sixth.
  expected = {"train": [(order[0], (1, 2, 3)), (order[1], (1, 2, 3)),
                        (order[2], (1,))],
              "validation": [(order[3], (1, 2))],
              "test": [(order[4], (1, 2, 3)), (order[5], (1,))]}
  for split, scenes in expected.items():
    assert [(p.group, p.patch) for p in plan[split]] == [
        (scene, k) for scene, ks in scenes for k in ks]
  groups = [{p.group for p in kept} for kept in plan.values()]
  assert not (groups[0] & groups[1] or groups[0] & groups[2]
              or groups[1] & groups[2])


def test_too_few_patches_for_the_split_sizes_names_the_counts():
  patches = _patches({1: 3, 2: 3, 3: 3})
  with pytest.raises(sen1_2_dataset_builder.TooFewPatches,
                     match=r"\(5, 2, 2\) \(9 pairs\).*9 pairs of 3 scenes"):
    # 9 pairs, but the scene that completes train leaves its last one out.
    sen1_2_dataset_builder.plan_split_sizes(patches, (5, 2, 2), seed=0)
  with pytest.raises(ValueError, match="3 positive counts"):
    sen1_2_dataset_builder.plan_split_sizes(patches, (5, 0, 2), seed=0)


def test_the_paper_config_builds_its_split_sizes(tmp_path):
  """A config with split_sizes builds exactly those counts from the dummy
  archive (6 pairs of 4 scenes); the paper config asks for the paper's."""
  import dataclasses
  from etils import epath

  paper = next(c for c in sen1_2_dataset_builder.Builder.BUILDER_CONFIGS
               if c.name == "paper")
  assert paper.split_sizes == (18_712, 500, 4_678)
  small = dataclasses.replace(paper, name="small", split_sizes=(2, 1, 1))
  builder = sen1_2_dataset_builder.Builder(config=small,
                                           data_dir=str(tmp_path))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=epath.Path(__file__).parent / "dummy_data"))
  counts = {s: builder.info.splits[s].num_examples
            for s in ("train", "validation", "test")}
  assert counts == {"train": 2, "validation": 1, "test": 1}
  scenes = {}
  for split in counts:
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
      scenes.setdefault(split, set()).add(
          (example["season"].decode(), int(example["scene"])))
  assert not (scenes["train"] & scenes["validation"]
              or scenes["train"] & scenes["test"]
              or scenes["validation"] & scenes["test"])
