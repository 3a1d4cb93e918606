r"""Runs a trained generator over a whole scene: `rsjax.eval.inference.full_scene.infer`.

  python -m launch.infer --workdir workdir/rs_spade --scene scenes/area_1 \
      --output area_1_s2.tif
  python -m launch.infer --workdir workdir/cloud_removal --scene scenes/area_2 \
      --output area_2_clear.tif --composite --window 256 --overlap 64 --batch 8
  python -m launch.infer --workdir W --scene scenes/a --source dem=/data/dem.tif \
      --crs EPSG:32633 --resolution 10 --output out.tif
  rsjax-infer --workdir ~/runs/rs_spade --scene scenes/area_1 --output a1.tif

`rsjax-infer` is the installed command (any directory): the workdir's
config.json names its data_dir as an absolute path (or a URI).

--scene is a folder holding the sources the generator reads, named as in the
rs_multisource scene layout (s1.tif, lulc.tif, dem.tif, s2_cloudy.tif,
cloud_mask.tif, ...), or a comma-separated list of such files; any size, CRS
and resolution; local or on object storage (`gs://bucket/scenes/area_1`: the
files used are downloaded to a temporary folder under TMPDIR, removed at the
end; the same for a --source path). The output is a Cloud-Optimized GeoTIFF on the reference grid
(uint16 reflectance x 10000 with nodata 0 for optical outputs, uint8 classes
with nodata 255 for segmentation), written only once complete: an error,
Ctrl-C or SIGTERM leaves no output file.

The grid, and what is refused (`rsjax.eval.inference.grid_checks`,
`nodata_checks`); a refusal prints one message naming the CRS, flag, file or
band (no traceback), writes nothing and exits with status 1, as the other
launchers do for a user's mistake:

- --resolution is the pixel size in metres; by default the pixel size of the
  tiles the run was trained on (read from the first example of its dataset,
  `rsjax.eval.inference.training_grid`), 10 m where the run does not know it
  (random in-memory tiles, a dataset not found here). A pixel size more than
  a factor 2 off the training one is refused, naming both and the flags:
  the generator never saw objects at another scale (no scale augmentation);
  an octave still admits 20 m products or 5 m images for a 10 m run.
  --allow_resolution_mismatch runs anyway, with a warning.
- The grid CRS (--crs, or the scene's) must be projected in metres: a
  geographic CRS (degrees) or one in feet is refused, suggesting the scene's
  UTM zone.
- Its scale factors over the scene (meridional and parallel, pyproj) must lie
  within 5 % of true scale: a projection used far from where it is true
  (polar stereographic EPSG:3031 outside Antarctica, Web Mercator EPSG:3857
  away from the equator) is refused, naming the CRS, the factor and the CRS
  to use instead (the scene's UTM zone; UPS beyond 84 N / 80 S).
- An input band with no valid pixel over the grid (all NaN or nodata, e.g.
  S1 band 1 VV) is refused before anything is predicted, naming the file and
  band; an output that would be nodata everywhere (inputs whose valid areas
  do not meet, a generator giving NaN) is not published, naming the output
  and why.
"""

from __future__ import annotations

import signal
import sys

from absl import app, flags, logging

from launch import commands, user_errors

REFUSED_EXIT_STATUS = 1   # the inputs cannot give a meaningful output

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
_RESOLUTION = flags.DEFINE_float(
    "resolution", None, "Grid pixel size in metres (default: the pixel size "
    "the run was trained on; 10 where unknown).")
_ALLOW_RESOLUTION_MISMATCH = flags.DEFINE_bool(
    "allow_resolution_mismatch", False, "Run on a --resolution more than a "
    "factor 2 off the training pixel size (a warning instead of an error).")
_S2_SCALE = flags.DEFINE_float("s2_scale", 1e-4, "Reflectance per DN of "
                               "optical inputs (1: the files hold "
                               "reflectance). Checked against the files.")
_S1_UNITS = flags.DEFINE_enum("s1_units", "linear", ["linear", "db"],
                              "Units of the SAR inputs. Checked against the "
                              "files.")
_PROGRESS = flags.DEFINE_bool(
    "progress", True, "Log windows done, rate and time left every 20 s.")


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
  # pylint: disable=g-import-not-at-top
  from rsjax.eval.inference import full_scene, grid_checks, nodata_checks
  from rsjax.geo import units as geo_units
  sources = _parse_sources(_SOURCES.value)
  if _SCENE.value is None and not sources:
    raise app.UsageError("give --scene and/or --source name=path.")
  try:
    stats = full_scene.infer(
        _WORKDIR.value, _SCENE.value, _OUTPUT.value, window=_WINDOW.value,
        overlap=_OVERLAP.value, batch_size=_BATCH.value,
        composite=_COMPOSITE.value, sources=sources,
        expect_system=_SYSTEM.value, crs=_CRS.value,
        resolution=_RESOLUTION.value,
        allow_resolution_mismatch=_ALLOW_RESOLUTION_MISMATCH.value,
        s2_scale=_S2_SCALE.value, s1_units=_S1_UNITS.value,
        progress=_PROGRESS.value)
  except (grid_checks.GridError, nodata_checks.NoDataError,
          geo_units.UnitsError) as refused:
    logging.error("refused, nothing written: %s", refused)
    sys.exit(REFUSED_EXIT_STATUS)
  logging.info("wrote %s: %dx%d pixels, %d windows in %.1f s (%.2f MP/s)",
               stats.path, stats.width, stats.height, stats.windows,
               stats.seconds, stats.megapixels_per_second)


def cli():
  """The `rsjax-infer` command: `python -m launch.infer` as installed."""
  commands.as_main(__name__)
  app.run(user_errors.with_console(main))


if __name__ == "__main__":
  cli()
