"""Reported SAM is in each paper's unit (#17, #19), and the table says which.

RS-SPADE (Tables 1-2) prints SAM 0.19 and 0.23 beside PSNR 23 and 19 dB:
radians (0.19 deg would be an almost perfect spectrum). The fusion paper
(Tables II, IV, VI) prints 5.9 to 8.2: degrees (more than pi radians is
impossible for reflectances). So `rsjax.systems.image_scores` (RS-SPADE,
pix2pix and CSEBGAN) reports radians, the cycle-fusion scores degrees, and
the tables of `launch.evaluate` label the columns 'SAM (rad)' / 'SAM (deg)'.
Pinned on batches whose spectral angle is computed by hand in float64 numpy.

Every pixel of an image holds the same band vectors, so each image's SAM is the
angle between two fixed vectors. All inputs are dyadic: normalized 0.0 and 0.75
map to exactly 0.5 and 0.875 on [0, 1], so the float32 inputs are exact.

Tolerance: per pixel, the angle 2 atan2(|u - v|, |u + v|) of float32 unit
vectors is off by a few float32 ulps of 1 (each of norm, divide, subtract,
norm, atan2 adds <= ~2 eps, eps = 2**-23 ~ 1.2e-7), i.e. < 20 eps rad absolute;
the float32 mean of 256 equal values adds < 256 eps relative with any
summation order. rtol = 300 eps = 3.6e-5 (with atol = 20 eps rad, in the
unit compared) covers both; the other unit is off by a factor 57.
"""

import math

import numpy as np
import pytest

from rsjax.eval.report import tables
from rsjax.systems import image_scores
from rsjax.systems.cycle_fusion import scores as fusion_scores

EPS = 2.0**-23
RTOL = 300 * EPS
ATOL_RAD = 20 * EPS
SIZE = 16


def _angle_rad(p, t):
  """Spectral angle between two vectors, float64 arccos of the cosine."""
  p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
  return math.acos(p @ t / (np.linalg.norm(p) * np.linalg.norm(t)))


def _batch(bands):
  """Normalized [-1, 1] target (all 0.0, i.e. 0.5 on [0, 1]) and prediction
  equal to it except band b of image b set to 0.75 (0.875 on [0, 1]); a third,
  padding image holds garbage. Returns (pred, target, mask, angles in rad)."""
  target = np.zeros((3, SIZE, SIZE, bands), np.float32)
  pred = target.copy()
  angles = []
  for b in range(2):
    pred[b, ..., b] = 0.75
    unit_p = np.full(bands, 0.5)
    unit_p[b] = 0.875
    angles.append(_angle_rad(unit_p, np.full(bands, 0.5)))
  pred[2] = -1.0  # padding row: an angle of its own that must not count
  pred[2, ..., 0] = 1.0
  mask = np.array([1.0, 1.0, 0.0], np.float32)
  return pred, target, mask, angles


def _header(table, key, section_id):
  (section,) = [s for s in table.sections if s.id == section_id]
  return [c.header for c in section.columns if c.key == key][0]


def test_image_scores_report_sam_in_radians_as_rs_spade():
  pred, target, mask, angles = _batch(3)
  # By hand: u = (0.875, 0.5, 0.5), v = (0.5, 0.5, 0.5):
  # cos = 0.9375 / (1.125 * sqrt(0.75)) = 0.96225 -> 0.275643 rad (15.79 deg).
  assert math.isclose(angles[0], 0.275643, abs_tol=1e-6)
  scores = image_scores.finalize_scores(
      image_scores.score_sums(pred, target, mask))
  np.testing.assert_allclose(scores["sam"], np.mean(angles), rtol=RTOL,
                             atol=ATOL_RAD)
  assert image_scores.UNITS["sam"] == "rad"
  # The table's SAM (rad) cell shows that number, not a conversion of it.
  for layout, section in (("paired_gan", "main"), ("csebgan", "fidelity")):
    table = tables.build(layout, [("model", scores)])
    assert _header(table, "sam", section) == "SAM (rad) \u2193"
    assert f"| {np.mean(angles):.3f} |" in tables.to_markdown(table)


def test_fusion_scores_report_sam_in_degrees_as_the_fusion_paper():
  names = ("B2", "B3", "B4", "B8")
  pred, target, mask, angles = _batch(len(names))
  sums = fusion_scores.score_sums({"": pred, "t1_": target}, target, mask,
                                  ratio=2, band_names=names)
  scores = fusion_scores.finalize(sums)
  degrees = [math.degrees(a) for a in angles]
  np.testing.assert_allclose(scores["sam"], np.mean(degrees), rtol=RTOL,
                             atol=math.degrees(ATOL_RAD))
  assert fusion_scores.finalize(sums, "t1_")["t1_sam"] == 0.0
  assert fusion_scores.UNITS["sam"] == "deg"
  table = tables.build("cycle_fusion", [("HSTS", scores)])
  assert _header(table, "sam", "bands") == "SAM (deg) \u2193"
  assert f"| HSTS | average | {np.mean(degrees):.2f} |" in tables.to_markdown(
      table)


# Each paper's quality indices and the unit its tables print them in.
UNITS_OF_LAYOUT = {
    "paired_gan": {"psnr": "dB", "sam": "rad"},
    "csebgan": {"psnr": "dB", "sam": "rad", "miou": "%", "fwiou": "%",
                "pixel_accuracy": "%"},
    "cloud_removal": {"psnr": "dB", "psnr_cloudy": "dB", "psnr_clear": "dB",
                      "stage1_psnr": "dB", "cloud_fraction": "%"},
    "cycle_fusion": {"psnr": "dB", "sam": "deg"},
    "segmentation": {"pixel_accuracy": "%", "mean_pixel_accuracy": "%",
                     "miou": "%", "fwiou": "%"},
}


@pytest.mark.parametrize("layout", sorted(UNITS_OF_LAYOUT))
def test_every_table_header_carries_its_unit(layout):
  keys = {c.key for spec in tables.LAYOUTS[layout].get("sections", [])
          for c in spec[2]}
  if tables.LAYOUTS[layout].get("per_band"):
    keys |= {c.key for c in tables._BAND_COLUMNS}
  scores = {key: 0.5 for key in keys}
  table = tables.build(layout, [("run", scores)])
  headers = {c.key: c.header for s in table.sections for c in s.columns}
  for key, unit in UNITS_OF_LAYOUT[layout].items():
    assert f"({unit})" in headers[key], (layout, key, headers[key])
  # A percentage column shows 100 x the raw fraction.
  markdown = tables.to_markdown(table)
  if "%" in UNITS_OF_LAYOUT[layout].values():
    assert "| 50.00 |" in markdown or "| 50.0 |" in markdown
