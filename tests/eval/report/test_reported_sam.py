"""Reported SAM is in degrees (#19): the evaluation scores of the systems
(`rsjax.systems.image_scores` for RS-SPADE, pix2pix and CSEBGAN; the fusion
scores of cycle fusion) and the table cell labelled 'SAM (deg)', pinned on
batches whose spectral angle is computed by hand in float64 numpy.

Every pixel of an image holds the same band vectors, so each image's SAM is the
angle between two fixed vectors. All inputs are dyadic: normalized 0.0 and 0.75
map to exactly 0.5 and 0.875 on [0, 1], so the float32 inputs are exact.

Tolerance: per pixel, the angle 2 atan2(|u - v|, |u + v|) of float32 unit
vectors is off by a few float32 ulps of 1 (each of norm, divide, subtract,
norm, atan2 adds <= ~2 eps, eps = 2**-23 ~ 1.2e-7), i.e. < 20 eps rad absolute;
the float32 mean of 256 equal values adds < 256 eps relative with any
summation order. rtol = 300 eps = 3.6e-5 (with atol = 20 eps rad in degrees)
covers both; radians instead of degrees is off by a factor 57.
"""

import math

import numpy as np

from rsjax.eval.report import tables
from rsjax.systems import image_scores
from rsjax.systems.cycle_fusion import scores as fusion_scores

EPS = 2.0**-23
RTOL = 300 * EPS
ATOL_DEG = math.degrees(20 * EPS)
SIZE = 16


def _angle_deg(p, t):
  """Spectral angle between two vectors, float64 arccos of the cosine."""
  p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
  return math.degrees(math.acos(p @ t / (np.linalg.norm(p) *
                                         np.linalg.norm(t))))


def _batch(bands):
  """Normalized [-1, 1] target (all 0.0, i.e. 0.5 on [0, 1]) and prediction
  equal to it except band b of image b set to 0.75 (0.875 on [0, 1]); a third,
  padding image holds garbage. Returns (pred, target, mask, angles in deg)."""
  target = np.zeros((3, SIZE, SIZE, bands), np.float32)
  pred = target.copy()
  angles = []
  for b in range(2):
    pred[b, ..., b] = 0.75
    unit_p = np.full(bands, 0.5)
    unit_p[b] = 0.875
    angles.append(_angle_deg(unit_p, np.full(bands, 0.5)))
  pred[2] = -1.0  # padding row: an angle of its own that must not count
  pred[2, ..., 0] = 1.0
  mask = np.array([1.0, 1.0, 0.0], np.float32)
  return pred, target, mask, angles


def test_image_scores_report_sam_in_degrees():
  pred, target, mask, angles = _batch(3)
  # By hand: u = (0.875, 0.5, 0.5), v = (0.5, 0.5, 0.5):
  # cos = 0.9375 / (1.125 * sqrt(0.75)) = 0.96225 -> 15.7932 degrees.
  assert math.isclose(angles[0], 15.7932, abs_tol=1e-4)
  scores = image_scores.finalize_scores(
      image_scores.score_sums(pred, target, mask))
  np.testing.assert_allclose(scores["sam"], np.mean(angles), rtol=RTOL,
                             atol=ATOL_DEG)
  # The table's SAM (deg) cell shows that number, not a conversion of it.
  table = tables.build("paired_gan", [("model", scores)])
  (section,) = table.sections
  header = [c.header for c in section.columns if c.key == "sam"][0]
  assert "deg" in header
  assert f"| {np.mean(angles):.2f} |" in tables.to_markdown(table)


def test_fusion_scores_report_sam_in_degrees():
  names = ("B2", "B3", "B4", "B8")
  pred, target, mask, angles = _batch(len(names))
  sums = fusion_scores.score_sums({"": pred, "t1_": target}, target, mask,
                                  ratio=2, band_names=names)
  scores = fusion_scores.finalize(sums)
  np.testing.assert_allclose(scores["sam"], np.mean(angles), rtol=RTOL,
                             atol=ATOL_DEG)
  assert fusion_scores.finalize(sums, "t1_")["t1_sam"] == 0.0
