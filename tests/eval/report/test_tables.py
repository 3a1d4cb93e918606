"""Table layouts from hand-written score dicts: the papers' columns, units and
arrows, per-band and per-class rows, optional columns, the 'other' section."""

import csv
import io
import json
import math

import pytest

from rsjax.eval.report import tables


def _rows(section):
  return {labels: dict(zip([c.key for c in section.columns], values))
          for labels, values in section.rows}


def _sections(table):
  return {s.id: s for s in table.sections}


def test_paired_gan_is_rs_spade_tables_1_and_2():
  runs = [("RS-SPADE", {"psnr": 23.14, "ssim": 0.84, "sam": 0.19}),
          ("pix2pix", {"psnr": 18.84, "ssim": 0.62, "sam": 0.23})]
  table = tables.build("paired_gan", runs)
  assert [s.id for s in table.sections] == ["main"]
  main = table.sections[0]
  # The paper's SAM 0.19 / 0.23 are radians (tests/eval/report/test_reported_sam.py).
  assert [c.header for c in main.columns] == ["PSNR (dB) \u2191", "SSIM \u2191",
                                              "SAM (rad) \u2193"]
  assert _rows(main)[("pix2pix",)] == {"psnr": 18.84, "ssim": 0.62, "sam": 0.23}
  markdown = tables.to_markdown(table)
  assert "| RS-SPADE | 23.14 | 0.8400 | 0.190 |" in markdown
  assert markdown.index("RS-SPADE") < markdown.index("pix2pix")
  parsed = list(csv.reader(io.StringIO(tables.to_csv(main))))
  assert parsed[0] == ["model", "PSNR (dB) \u2191", "SSIM \u2191", "SAM (rad) \u2193"]
  assert [float(x) for x in parsed[2][1:]] == [18.84, 0.62, 0.23]


def test_cloud_removal_table_4_with_and_without_stage_1():
  scores = {"psnr": 23.09, "ssim": 0.69, "psnr_cloudy": 19.90,
            "psnr_clear": 25.91}
  without = tables.build("cloud_removal", [("ours", scores)])
  assert [s.id for s in without.sections] == ["main"]
  assert [c.name for c in without.sections[0].columns] == [
      "PSNR", "SSIM", "PSNR cloudy areas", "PSNR clear areas"]
  full = tables.build("cloud_removal", [
      ("ours", {**scores, "stage1_psnr": 19.45, "stage1_ssim": 0.445})])
  assert _rows(_sections(full)["stage1"])[("ours",)] == {
      "stage1_psnr": 19.45, "stage1_ssim": 0.445}


def test_cycle_fusion_rows_are_bands_and_average():
  scores = {"sam": 1.2, "ergas": 3.4, "q": 0.9, "psnr": 30.2, "ssim": 0.91}
  for band, value in (("B2", 0.1), ("B3", 0.2), ("B4", 0.3)):
    scores.update({f"psnr_{band}": 30 + value, f"ssim_{band}": 0.9 + value / 10,
                   f"q_{band}": 0.8 + value / 10})
  table = tables.build("cycle_fusion", [("HSTS", scores)])
  assert [s.id for s in table.sections] == ["bands"]    # nothing left over
  section = table.sections[0]
  assert section.label_headers == ("model", "band")
  assert [c.name for c in section.columns] == ["SAM", "ERGAS", "Q", "PSNR", "SSIM"]
  rows = _rows(section)
  assert [labels[1] for labels in rows] == [
      "B2 (blue)", "B3 (green)", "B4 (red)", "average"]  # no B8: not scored
  assert rows[("HSTS", "B3 (green)")] == {
      "sam": None, "ergas": None, "q": 0.8 + 0.02, "psnr": 30.2,
      "ssim": 0.9 + 0.02}
  assert rows[("HSTS", "average")] == {"sam": 1.2, "ergas": 3.4, "q": 0.9,
                                       "psnr": 30.2, "ssim": 0.91}
  assert "| HSTS | B2 (blue) | \u2013 | \u2013 | 0.8100 | 30.10 |" in \
      tables.to_markdown(table)


def test_segmentation_percent_per_class_names_and_absent_classes():
  scores = {"pixel_accuracy": 0.9, "mean_pixel_accuracy": 0.5, "miou": 0.4,
            "fwiou": 0.8}
  scores.update({f"iou_{k}": 0.1 * k for k in range(9)})
  scores["iou_8"] = float("nan")         # snow and ice: absent
  table = tables.build("segmentation", [("unet", scores)])
  main, per_class = table.sections
  assert [c.header for c in main.columns] == [
      "PA (%) \u2191", "MPA (%) \u2191", "mIoU (%) \u2191", "FWIoU (%) \u2191"]
  assert [float(x) for x in list(csv.reader(io.StringIO(
      tables.to_csv(main))))[1][1:]] == pytest.approx([90.0, 50.0, 40.0, 80.0])
  assert [c.name for c in per_class.columns] == list(tables.CLASS_NAMES)
  assert _rows(per_class)[("unet",)]["iou_8"] is None
  assert "| unet | 0.00 | 10.00 |" in tables.to_markdown(table)
  assert json.loads(json.dumps(tables.to_dict(table)))["sections"][1][
      "rows"][0]["values"][8] is None


def test_csebgan_optional_columns_follow_the_scores():
  base = {"miou": 0.675, "fwiou": 0.894, "pixel_accuracy": 0.941,
          "psnr": 20.0, "ssim": 0.5, "sam": 5.0}
  plain = tables.build("csebgan", [("ours", base)])
  assert [s.id for s in plain.sections] == ["fidelity"]
  assert "fid" not in [c.key for c in plain.sections[0].columns]
  full = tables.build("csebgan", [
      ("ours", {**base, "fid": 155.29, "diversity": 0.31, "mcsd": 0.07,
                "mocd": 0.013}),
      ("w/o C", base)])
  fidelity, diversity = full.sections
  assert fidelity.columns[0].header == "FID \u2193"
  assert [c.header for c in diversity.columns] == [
      "LPIPS diversity \u2191", "mCSD \u2191", "mOCD \u2193"]
  assert _rows(diversity)[("w/o C",)] == {"diversity": None, "mcsd": None,
                                          "mocd": None}
  # Without the paper's weights: VGG19 columns, never under the paper's names.
  vgg = tables.build("csebgan", [("ours", {
      **base, "vgg_fid": 80.5, "vgg_diversity": 0.2, "vgg_mcsd": 0.05,
      "vgg_mocd": 0.01})])
  fidelity, diversity = vgg.sections
  assert [c.key for c in fidelity.columns][:2] == ["vgg_fid", "miou"]
  assert [c.header for c in diversity.columns] == [
      "VGG19 diversity ↑", "VGG19 mCSD ↑", "VGG19 mOCD ↓"]
  assert _rows(diversity)[("ours",)] == {"vgg_diversity": 0.2,
                                         "vgg_mcsd": 0.05, "vgg_mocd": 0.01}
  assert not [s for s in vgg.sections if s.id == "other"]


def test_unknown_keys_go_to_other_and_missing_values_show_a_dash():
  table = tables.build("paired_gan", [("a", {"psnr": 20.0, "ssim": 0.5,
                                             "lpips": 0.3}),
                                      ("b", {"psnr": 21.0, "ssim": 0.6,
                                             "sam": 3.0})])
  main, other = table.sections
  assert other.id == "other" and [c.key for c in other.columns] == ["lpips"]
  assert _rows(other)[("b",)] == {"lpips": None}
  assert "| a | 20.00 | 0.5000 | \u2013 |" in tables.to_markdown(table)
  generic = tables.build(tables.layout_of("a_new_system"),
                         [("x", {"score": 1.0})])
  assert [s.id for s in generic.sections] == ["other"]


def test_infinite_psnr_is_shown_and_json_safe():
  table = tables.build("paired_gan", [("ideal", {"psnr": math.inf, "ssim": 1.0,
                                                 "sam": 0.0})])
  assert "| ideal | inf |" in tables.to_markdown(table)
  json.dumps(tables.to_dict(table), allow_nan=False)


def test_bad_layout_and_no_runs():
  with pytest.raises(ValueError, match="unknown table layout 'gan'"):
    tables.build("gan", [("a", {})])
  with pytest.raises(ValueError, match="no runs"):
    tables.build("paired_gan", [])


def test_the_systems_score_keys_fill_their_layouts():
  """Keys from the systems' own finalize functions: nothing left in 'other'."""
  import jax
  import numpy as np
  from configs import unet_seg
  from rsjax.systems import base, image_scores
  from rsjax.systems.cloud_removal import scores as cloud_scores
  from rsjax.systems.cycle_fusion import scores as fusion_scores
  rng = np.random.default_rng(0)
  pred, target, other = rng.uniform(-1, 1, (3, 2, 16, 16, 4)).astype(np.float32)
  corrupted = (rng.random((2, 16, 16)) < 0.3).astype(np.float32)

  def ids(layout, scores):
    return [s.id for s in tables.build(layout, [("run", scores)]).sections]

  @jax.jit  # one compiled program instead of hundreds of eager ops
  def all_sums(pred, target, other, corrupted):
    return (image_scores.score_sums(pred, target),
            cloud_scores.score_sums(pred, target, corrupted, stage1=other),
            fusion_scores.score_sums({"": pred, "lowres_": other,
                                      "t1_": target}, target, ratio=3,
                                     band_names=tables.BANDS))

  paired, cloud, sums = jax.device_get(all_sums(pred, target, other, corrupted))
  assert ids("paired_gan", image_scores.finalize_scores(paired)) == ["main"]
  assert ids("cloud_removal", cloud_scores.finalize_scores(cloud)) == [
      "main", "stage1"]
  scores = {**fusion_scores.finalize(sums),
            **fusion_scores.finalize(sums, "lowres_"),
            **fusion_scores.finalize(sums, "t1_")}
  table = tables.build("cycle_fusion", [("run", scores)])
  assert [s.id for s in table.sections] == ["bands"]
  assert [labels[1] for labels, _ in table.sections[0].rows][-3:] == [
      "average", "baseline: low-res input", "baseline: t1 image"]
  config = unet_seg.get_config("s2")
  config.epochs, config.total_steps = None, 1   # no dataset to count epochs
  segmentation = base.get_system(config)
  confusion = rng.integers(0, 50, (9, 9))
  assert ids("segmentation", segmentation.finalize_eval(
      {"confusion_matrix": confusion, "count": 2.0})) == ["main",
                                                          "per_class_iou"]
