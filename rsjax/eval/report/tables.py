"""Score dicts -> tables laid out like the papers' tables (Markdown, CSV, JSON).

A layout depends only on the keys a system's `finalize_eval` returns; one row
per run (label), in the order given:

  paired_gan     RS-SPADE paper Tables 1-2: PSNR, SSIM, SAM
  cloud_removal  two-GAN paper Table 4: PSNR, SSIM, PSNR of cloudy and of
                 clear areas (+ cloud cover); stage 1 (SAR -> optical,
                 Table 3) PSNR, SSIM
  cycle_fusion   cycle-GAN paper Tables II/IV/VI: per band + average rows
                 (+ the trivial baselines' averages); SAM, ERGAS (average
                 rows only), Q, PSNR, SSIM
  segmentation   review Eq. 1-5: PA, MPA, mIoU, FWIoU; per-class IoU
  csebgan        CSEBGAN Tables I-II: FID, mIoU, FWIoU, acc, PSNR, SSIM, SAM;
                 LPIPS diversity, mCSD, mOCD (+ their pixel-space variants)

Keys no layout section claims go to an "other scores" section (never dropped).
Headers carry units (dB, rad or deg, %; none for a dimensionless index) and
the better direction (up: higher is better). SAM is in each paper's unit, as
the system computes it (`UNITS` of `rsjax.systems.image_scores` and of the
cycle-fusion scores): radians for RS-SPADE (its Tables 1-2 print 0.19 and
0.23) and, with the same scores, CSEBGAN; degrees for cycle fusion (its
tables print up to 8.16). Values in JSON are the raw scores; Markdown and
CSV show them scaled to the header's unit (percent for segmentation scores,
as the papers print them).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rsjax.data import fields as fields_lib
from rsjax.systems import image_scores
from rsjax.systems.cycle_fusion import scores as fusion_scores

HIGHER, LOWER = "higher", "lower"
ARROWS = {HIGHER: "\u2191", LOWER: "\u2193", None: ""}
MISSING = "\u2013"

# Land-cover classes and the optical fields' bands, as declared.
CLASS_NAMES = fields_lib.class_names("lulc")
BANDS = fields_lib.band_names("s2")
BAND_NAMES = {"B2": "B2 (blue)", "B3": "B3 (green)", "B4": "B4 (red)",
              "B8": "B8 (NIR)"}


@dataclasses.dataclass(frozen=True)
class Column:
  """One score column: its key in the score dict and how it is shown."""
  key: str
  name: str
  unit: str = ""
  better: str | None = HIGHER
  scale: float = 1.0
  digits: int = 4
  optional: bool = False     # dropped when no run has the key

  @property
  def header(self) -> str:
    unit = f" ({self.unit})" if self.unit else ""
    arrow = f" {ARROWS[self.better]}" if self.better else ""
    return f"{self.name}{unit}{arrow}"

  def shown(self, value: float | None) -> float | None:
    return None if value is None else value * self.scale


@dataclasses.dataclass
class Section:
  """A table: label columns, then score columns; rows of (labels, values)."""
  id: str
  title: str
  label_headers: tuple[str, ...]
  columns: list[Column]
  rows: list[tuple[tuple[str, ...], list[float | None]]]


@dataclasses.dataclass
class Table:
  layout: str
  title: str
  sections: list[Section]


def _db(key, name="PSNR", **kw):
  return Column(key, name, "dB", HIGHER, digits=2, **kw)


def _sam(unit, key="sam", name="SAM", **kw):
  """A spectral-angle column in `unit` ('rad': 3 decimals, 'deg': 2)."""
  if unit not in ("rad", "deg"):
    raise ValueError(f"SAM column: unit {unit!r} is neither 'rad' nor 'deg'")
  return Column(key, name, unit, LOWER, digits=3 if unit == "rad" else 2, **kw)


def _percent(key, name, **kw):
  return Column(key, name, "%", HIGHER, scale=100.0, digits=2, **kw)


_SSIM = Column("ssim", "SSIM", digits=4)
LAYOUTS: dict[str, dict[str, Any]] = {
    "paired_gan": {
        "title": "Optical image generation (RS-SPADE paper, Tables 1-2)",
        "sections": [("main", "Scores", [
            _db("psnr"), _SSIM, _sam(image_scores.UNITS["sam"])])]},
    "cloud_removal": {
        "title": "Cloud removal (two-GAN paper, Table 4; stage 1: Table 3)",
        "sections": [
            ("main", "Cloud removal", [
                _db("psnr"), _SSIM, _db("psnr_cloudy", "PSNR cloudy areas"),
                _db("psnr_clear", "PSNR clear areas"),
                Column("cloud_fraction", "cloud cover", "%", None, scale=100.0,
                       digits=1, optional=True)]),
            ("stage1", "Stage 1: SAR to optical translation", [
                _db("stage1_psnr", optional=True),
                Column("stage1_ssim", "SSIM", optional=True)])]},
    "segmentation": {
        "title": "Land-cover segmentation (review paper, Eq. 1-5)",
        "sections": [("main", "Scores", [
            _percent("pixel_accuracy", "PA"),
            _percent("mean_pixel_accuracy", "MPA"),
            _percent("miou", "mIoU"), _percent("fwiou", "FWIoU")])],
        "per_class": True},
    "csebgan": {
        "title": "Semantic image synthesis (CSEBGAN paper, Tables I-III)",
        "sections": [
            ("fidelity", "Fidelity", [
                Column("fid", "FID", "", LOWER, digits=2, optional=True),
                # Without the paper's Inception / LPIPS weights: the same
                # scores on VGG19 features, comparable between rsjax runs only.
                Column("vgg_fid", "VGG19 FD", "", LOWER, digits=2,
                       optional=True),
                _percent("miou", "mIoU"), _percent("fwiou", "FWIoU"),
                _percent("pixel_accuracy", "acc"), _db("psnr"), _SSIM,
                _sam(image_scores.UNITS["sam"])]),
            ("diversity", "Diversity", [
                Column("diversity", "LPIPS diversity", optional=True),
                Column("mcsd", "mCSD", optional=True),
                Column("mocd", "mOCD", "", LOWER, optional=True),
                Column("vgg_diversity", "VGG19 diversity", optional=True),
                Column("vgg_mcsd", "VGG19 mCSD", optional=True),
                Column("vgg_mocd", "VGG19 mOCD", "", LOWER, optional=True),
                Column("pixel_diversity", "pixel diversity", optional=True),
                Column("pixel_mcsd", "pixel mCSD", optional=True),
                Column("pixel_mocd", "pixel mOCD", "", LOWER,
                       optional=True)])]},
    "cycle_fusion": {
        "title": ("Spatio-temporal-spectral fusion (cycle-GAN paper, "
                  "Tables II, IV, VI)"),
        "per_band": True},
}
_BAND_COLUMNS = (_sam(fusion_scores.UNITS["sam"]),
                 Column("ergas", "ERGAS", "", LOWER, digits=4),
                 Column("q", "Q"), _db("psnr"), _SSIM)
_AVERAGE_ONLY = ("sam", "ergas")
# Trivial baselines the fusion system scores against the same reference
# (averages only), shown as extra rows under each run.
BASELINES = {"lowres_": "baseline: low-res input", "t1_": "baseline: t1 image"}

# Systems whose score dicts share one layout (several may share one).
LAYOUT_OF_SYSTEM = {"paired_gan": "paired_gan", "cloud_removal": "cloud_removal",
                    "segmentation": "segmentation", "csebgan": "csebgan",
                    "cycle_fusion": "cycle_fusion"}


def layout_of(system: str) -> str:
  """The layout name of `system` ('generic' for a system without one)."""
  return LAYOUT_OF_SYSTEM.get(system, "generic")


def _float(value) -> float | None:
  """A score as a float; None for missing or NaN (e.g. IoU of absent class)."""
  if value is None:
    return None
  value = float(value)
  return None if math.isnan(value) else value


def _section(sid, title, columns, runs, claimed, label_headers=("model",)):
  columns = [c for c in columns
             if not c.optional or any(c.key in s for _, s in runs)]
  if not columns:
    return None
  claimed.update(c.key for c in columns)
  rows = [((label,), [_float(scores.get(c.key)) for c in columns])
          for label, scores in runs]
  return Section(sid, title, label_headers, columns, rows)


def _per_class_section(runs, claimed):
  keys = sorted({k for _, s in runs for k in s if re.fullmatch(r"iou_\d+", k)},
                key=lambda k: int(k[4:]))
  if not keys:
    return None
  columns = [_percent(k, CLASS_NAMES[int(k[4:])] if int(k[4:]) < len(
      CLASS_NAMES) else f"class {k[4:]}") for k in keys]
  return _section("per_class_iou", "Per-class IoU", columns, runs, claimed)


def _per_band_section(runs, claimed):
  present = [b for b in BANDS
             if any(f"{c.key}_{b}" in s for _, s in runs for c in _BAND_COLUMNS)]
  rows = []
  for label, scores in runs:
    for band in present:
      values = [None if c.key in _AVERAGE_ONLY else
                _float(scores.get(f"{c.key}_{band}")) for c in _BAND_COLUMNS]
      rows.append(((label, BAND_NAMES[band]), values))
    rows.append(((label, "average"),
                 [_float(scores.get(c.key)) for c in _BAND_COLUMNS]))
    for prefix, name in BASELINES.items():
      if any(prefix + c.key in scores for c in _BAND_COLUMNS):
        rows.append(((label, name), [_float(scores.get(prefix + c.key))
                                     for c in _BAND_COLUMNS]))
  claimed.update(c.key for c in _BAND_COLUMNS)
  claimed.update(p + c.key for p in BASELINES for c in _BAND_COLUMNS)
  claimed.update(f"{c.key}_{b}" for c in _BAND_COLUMNS for b in present
                 if c.key not in _AVERAGE_ONLY)
  return Section("bands", "Per band and average", ("model", "band"),
                 list(_BAND_COLUMNS), rows)


def build(layout: str, runs: Sequence[tuple[str, Mapping[str, Any]]]) -> Table:
  """The table of `layout` for (label, scores) runs, one row (group) each."""
  if layout not in LAYOUTS and layout != "generic":
    raise ValueError(f"unknown table layout {layout!r}; valid layouts: "
                     f"{', '.join(sorted(LAYOUTS))}, generic")
  if not runs:
    raise ValueError("no runs to tabulate")
  spec = LAYOUTS.get(layout, {"title": "Scores"})
  claimed: set[str] = set()
  sections = [_section(sid, title, columns, runs, claimed)
              for sid, title, columns in spec.get("sections", [])]
  if spec.get("per_band"):
    sections.append(_per_band_section(runs, claimed))
  if spec.get("per_class"):
    sections.append(_per_class_section(runs, claimed))
  other = sorted({k for _, s in runs for k in s} - claimed)
  if other:
    columns = [Column(k, k, better=None, digits=4) for k in other]
    sections.append(_section("other", "Other scores", columns, runs, claimed))
  return Table(layout, spec["title"], [s for s in sections if s is not None])


# -------------------------------------------------------------- rendering --

def _cell(column: Column, value: float | None) -> str:
  shown = column.shown(value)
  return MISSING if shown is None else f"{shown:.{column.digits}f}"


def to_markdown(table: Table, *, caption: str = "") -> str:
  lines = [f"# {table.title}", ""]
  if caption:
    lines += [caption, ""]
  for section in table.sections:
    headers = list(section.label_headers) + [c.header for c in section.columns]
    lines += [f"## {section.title}", "",
              "| " + " | ".join(headers) + " |",
              "|" + "|".join([":---"] * len(section.label_headers)
                             + ["---:"] * len(section.columns)) + "|"]
    for labels, values in section.rows:
      cells = list(labels) + [_cell(c, v) for c, v in
                              zip(section.columns, values)]
      lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
  lines.append(f"{ARROWS[HIGHER]} higher is better, {ARROWS[LOWER]} lower is "
               f"better; {MISSING}: not reported.")
  return "\n".join(lines) + "\n"


def to_csv(section: Section) -> str:
  """One section as CSV: header row, then values scaled to the header unit
  (full precision; empty cells for missing values)."""
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(list(section.label_headers)
                  + [c.header for c in section.columns])
  for labels, values in section.rows:
    writer.writerow(list(labels) + [
        "" if v is None else repr(c.shown(v))
        for c, v in zip(section.columns, values)])
  return out.getvalue()


def to_dict(table: Table) -> dict[str, Any]:
  """JSON-ready description of the table (raw values; None for missing and
  non-finite values, which JSON cannot hold)."""
  return {
      "layout": table.layout, "title": table.title,
      "sections": [{
          "id": s.id, "title": s.title, "label_headers": list(s.label_headers),
          "columns": [{"key": c.key, "header": c.header, "unit": c.unit,
                       "better": c.better, "scale": c.scale}
                      for c in s.columns],
          "rows": [{"labels": list(labels),
                    "values": [v if v is None or math.isfinite(v) else None
                               for v in values]}
                   for labels, values in s.rows]} for s in table.sections]}
