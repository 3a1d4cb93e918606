"""Report figures: sample grids (panels as columns, Dynamic World legend for
land cover) and training curves read from metrics.jsonl, several runs
overlaid."""

import json

import numpy as np
import pytest
from PIL import Image

from rsjax.eval.report import plots
from rsjax.eval.report import tables
from rsjax.systems import inputs as inputs_lib


def _batch(seed=0, batch=3, tile=16):
  rng = np.random.default_rng(seed)
  return {"s1": rng.uniform(-1, 1, (batch, tile, tile, 2)).astype(np.float32),
          "lulc": rng.integers(0, 9, (batch, tile, tile)),
          "s2": rng.uniform(-1, 1, (batch, tile, tile, 4)).astype(np.float32)}


def _panels(batch):
  panels = {}
  for name in ("s1", "lulc"):
    panels.update(inputs_lib.field_panels(name, batch[name], 9))
  panels.update(inputs_lib.prediction_panels("s2", batch["s2"] * 0.5,
                                             batch["s2"], 9))
  return panels


def _titles(figure):
  return [a.get_title() for a in figure.axes if a.get_title()]


def test_sample_grid_has_titled_columns_a_land_cover_legend_and_notes(
    tmp_path):
  panels = _panels(_batch())
  assert list(panels) == ["s1", "lulc", "pred RGB", "pred NRG", "target RGB",
                          "target NRG"]
  figure = plots.sample_figure(panels, max_rows=2)
  assert len(figure.axes) == 2 * 6
  assert [t.replace("\n", " ").replace("\N{NO-BREAK SPACE}", " ")
          for t in _titles(figure)] == [
      p.title for p in panels.values()]
  legend = [t.get_text() for t in figure.legends[0].get_texts()]
  assert legend == [n.replace("_", " ") for n in tables.CLASS_NAMES]
  notes = " ".join(t.get_text() for t in figure.texts).replace("\n", " ")
  assert "s1 VV: black -25 dB, white 0 dB" in notes
  assert "98th percentile" in notes
  path = plots.save_samples(str(tmp_path / "grid.png"), panels, max_rows=2)
  image = Image.open(path)
  assert image.format == "PNG" and image.size[0] > image.size[1]
  assert np.asarray(image).std() > 10            # not a blank canvas
  assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_plain_arrays_are_titled_by_name_without_legend():
  batch = _batch()
  panels = {"s1": inputs_lib.grey(batch["s1"][..., 0]),
            "lulc": inputs_lib.palette_image(batch["lulc"], 9)}
  figure = plots.sample_figure(panels)
  assert _titles(figure) == ["s1", "lulc"] and not figure.legends
  assert len(figure.axes) == 3 * 2


def test_sample_grid_rejects_mismatched_panels():
  with pytest.raises(ValueError, match="panel 'b' has shape"):
    plots.sample_figure({"a": np.zeros((2, 8, 8, 3)), "b": np.zeros((2, 8, 8))})
  with pytest.raises(ValueError, match="no panels"):
    plots.sample_figure({})


def _write_log(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


def test_read_metrics_skips_hparams_and_keeps_the_last_repeat(tmp_path):
  path = _write_log(tmp_path / "metrics.jsonl", [
      {"hparams": {"seed": "0"}},
      {"step": 1, "train/g_loss": 5.0, "train/loss_is_finite": 1.0},
      {"step": 2, "train/g_loss": 4.0},
      {"step": 2, "validation/psnr": 12.0, "steps_per_sec": 3.0},
      {"step": 2, "train/g_loss": 3.5},            # a resumed run re-logs 2
      {"step": 3, "train/g_loss": 3.0}])
  series = plots.read_metrics(path)
  np.testing.assert_array_equal(series["train/g_loss"][0], [1, 2, 3])
  np.testing.assert_array_equal(series["train/g_loss"][1], [5.0, 3.5, 3.0])
  assert plots.curve_names({"a": series}, "validation") == [
      "train/g_loss", "validation/psnr"]
  (tmp_path / "bad.jsonl").write_text("{not json\n")
  with pytest.raises(ValueError, match="bad.jsonl:1"):
    plots.read_metrics(str(tmp_path / "bad.jsonl"))


def test_training_curves_overlay_runs(tmp_path):
  files = {}
  for label, offset in (("rs_spade", 0.0), ("pix2pix", 1.0)):
    rows = [{"step": s, "train/g_loss": 10.0 - s + offset,
             "train/d_loss": 1.0 + offset} for s in range(1, 6)]
    rows += [{"step": 5, "validation/psnr": 20.0 - offset,
              "validation/ssim": 0.5, "validation/iou_3": 0.1}]
    files[label] = _write_log(tmp_path / f"{label}.jsonl", rows)
  runs = {k: plots.read_metrics(v) for k, v in files.items()}
  names = plots.curve_names(runs, "validation", eval_keys=["psnr", "ssim", "sam"])
  assert names == ["train/d_loss", "train/g_loss", "validation/psnr",
                   "validation/ssim"]
  figure = plots.curves_figure(runs, names)
  assert _titles(figure) == names
  assert [len(a.get_lines()) for a in figure.axes if a.get_visible()] == [2] * 4
  assert [t.get_text() for t in figure.legends[0].get_texts()] == [
      "rs_spade", "pix2pix"]
  path = plots.save_curves(str(tmp_path / "curves.png"), files,
                           eval_keys=["psnr", "ssim", "sam"])
  assert Image.open(path).format == "PNG"
  with pytest.raises(ValueError, match="no logged metrics"):
    plots.curves_figure(runs, [])
