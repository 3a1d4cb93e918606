r"""Runs a trained generator over a whole scene: `rsjax.eval.inference.full_scene.infer`.

  python -m launch.infer --workdir workdir/rs_spade --scene scenes/area_1 \
      --output area_1_s2.tif
  python -m launch.infer --workdir workdir/cloud_removal --scene scenes/area_2 \
      --output area_2_clear.tif --composite --window 256 --overlap 64 --batch 8
  python -m launch.infer --workdir W --scene scenes/a --source dem=/data/dem.tif \
      --crs EPSG:32633 --resolution 10 --output out.tif

--scene is a folder holding the sources the generator reads, named as in the
rs_multisource scene layout (s1.tif, lulc.tif, dem.tif, s2_cloudy.tif,
cloud_mask.tif, ...), or a comma-separated list of such files; any size, CRS
and resolution. The output is a Cloud-Optimized GeoTIFF on the reference grid
(uint16 reflectance x 10000 with nodata 0 for optical outputs, uint8 classes
with nodata 255 for segmentation), written only once complete: an error,
Ctrl-C or SIGTERM leaves no output file.
"""

from __future__ import annotations

import signal
import sys

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (config.json "
                               "and checkpoints).", required=True)
_SCENE = flags.DEFINE_string("scene", None, "Scene folder, or comma-separated "
                             "GeoTIFF paths.")
_OUTPUT = flags.DEFINE_string("output", None, "Output COG path.",
                              required=True)
_SOURCES = flags.DEFINE_multi_string(
    "source", [], "name=path: use this file for a source (repeatable).")
_WINDOW = flags.DEFINE_integer("window", 256, "Window side in pixels.")
_OVERLAP = flags.DEFINE_integer("overlap", 64, "Overlap of adjacent windows.")
_BATCH = flags.DEFINE_integer("batch", 8, "Windows per device call (a "
                              "multiple of the device count shards them).")
_COMPOSITE = flags.DEFINE_bool(
    "composite", False, "Cloud removal: keep the clear pixels of s2_cloudy "
    "(cloud_mask == 0) and use the prediction under clouds and shadows.")
_SYSTEM = flags.DEFINE_string("system", None, "Refuse a workdir whose "
                              "config.system is not this.")
_CRS = flags.DEFINE_string("crs", None, "Grid CRS (default: the finest "
                           "source's).")
_RESOLUTION = flags.DEFINE_float("resolution", 10.0, "Grid pixel size in CRS "
                                 "units.")
_S2_SCALE = flags.DEFINE_float("s2_scale", 1e-4, "Reflectance per DN of "
                               "optical inputs.")
_S1_UNITS = flags.DEFINE_enum("s1_units", "linear", ["linear", "db"],
                              "Units of the SAR inputs.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


def _parse_sources(values) -> dict[str, str]:
  sources = {}
  for value in values:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
      raise app.UsageError(f"--source {value!r}: expected name=path.")
    sources[name.strip()] = path.strip()
  return sources


def _exit_on_sigterm(signum, frame):
  del frame
  sys.exit(128 + signum)   # SystemExit unwinds: partial files are removed


def main(argv):
  del argv
  signal.signal(signal.SIGTERM, _exit_on_sigterm)
  from rsjax.eval.inference import full_scene  # pylint: disable=g-import-not-at-top
  sources = _parse_sources(_SOURCES.value)
  if _SCENE.value is None and not sources:
    raise app.UsageError("give --scene and/or --source name=path.")
  stats = full_scene.infer(
      _WORKDIR.value, _SCENE.value, _OUTPUT.value, window=_WINDOW.value,
      overlap=_OVERLAP.value, batch_size=_BATCH.value,
      composite=_COMPOSITE.value, sources=sources, expect_system=_SYSTEM.value,
      crs=_CRS.value, resolution=_RESOLUTION.value, s2_scale=_S2_SCALE.value,
      s1_units=_S1_UNITS.value, progress=_PROGRESS.value)
  logging.info("wrote %s: %dx%d pixels, %d windows in %.1f s (%.2f MP/s)",
               stats.path, stats.width, stats.height, stats.windows,
               stats.seconds, stats.megapixels_per_second)


if __name__ == "__main__":
  app.run(main)
