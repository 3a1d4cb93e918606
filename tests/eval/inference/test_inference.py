"""Full-scene inference into a COG (rsjax.eval.inference.full_scene, launch/infer.py).

Most tests drive `predict_scene` with `CopyBands`, a test double that
implements the System attributes and whose `predict` returns bands of one of
its (normalized) input fields, optionally plus a constant that depends on the
window's position in the batch. Copying the input is legitimate for testing
the machinery: what comes out must be the input itself, on the same grid, so
georeferencing, normalization round trips and blending are checked exactly;
the batch-position offset makes windows disagree, as a real generator's
outputs do at window borders, so seams would show. A tiny really trained
pix2pix run then goes through `launch.infer` end to end, and the bad-input
errors are checked against it. The guards (a grid CRS not in metres or that
distorts the scale, a resolution far from the training one, input bands and
outputs without data) are tables of cases, each asserting the exception or
exit status, what the message names, and an output folder left empty. The
published COGs are read back for what GIS tools show of each band (name,
units, GDAL scale and offset, nodata).
"""

import dataclasses
import inspect
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
import types

import affine
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rasterio
import rasterio.crs
import rasterio.warp
import rasterio.windows

from rsjax.data import fields as fields_lib
from rsjax.data import normalize
from rsjax.eval.inference import cog_writer
from rsjax.eval.inference import full_scene
from rsjax.eval.inference import grid_checks
from rsjax.eval.inference import nodata_checks
from rsjax.eval.inference import predictor as predictor_lib
from rsjax.eval.inference import training_grid
from rsjax.geo import align, synthetic
from rsjax.geo import scene as scene_lib
from rsjax.geo import units as geo_units
from rsjax.store import run_config
from rsjax.train import trainer
from tiny_configs import memory_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class CopyBands:
  """System double: predict = bands of an input field + offsets[k % 2], k
  the window's index in the batch. Counts how often `predict` is traced."""

  def __init__(self, field="s2", bands=None, offsets=(0.0, 0.0)):
    self.predict_fields = (field,)
    self.output_field = "s2"
    self.output_bands = bands
    self.field, self.offsets, self.traces = field, offsets, 0

  def predict(self, state, batch):
    del state
    self.traces += 1
    x = batch[self.field]
    if self.output_bands is not None:
      x = x[..., list(self.output_bands)]
    offsets = jnp.asarray(self.offsets, x.dtype)[jnp.arange(x.shape[0]) % 2]
    return x + offsets[:, None, None, None]


def _predictor(system):
  spec = predictor_lib.output_spec(system, num_classes=9)
  return predictor_lib.Predictor(system, None, spec=spec,
                                 normalization=normalize.resolve_config(None))


def _run(system, paths, output, grid=None, **kwargs):
  options = dict(window=32, overlap=8, batch_size=4, progress=False)
  options.update(kwargs)
  with scene_lib.SceneReader(paths, grid=grid) as inputs:
    return full_scene.predict_scene(_predictor(system), inputs, output,
                                   **options)


def _read(path):
  """(bands as int64, metadata) of a GeoTIFF."""
  with rasterio.open(path) as dataset:
    info = types.SimpleNamespace(
        crs=dataset.crs, transform=dataset.transform, width=dataset.width,
        height=dataset.height, count=dataset.count, dtypes=dataset.dtypes,
        nodata=dataset.nodata, descriptions=dataset.descriptions,
        units=dataset.units, scales=dataset.scales, offsets=dataset.offsets,
        tags=dataset.tags(), layout=dataset.tags(ns="IMAGE_STRUCTURE").get(
            "LAYOUT"))
    return dataset.read().astype(np.int64), info


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
  folder = tmp_path_factory.mktemp("scene")
  made = synthetic.make_scene(3, folder, size=96, cloud_coverage=0.3)
  return {name: str(path) for name, path in made.paths.items()}


def test_copied_input_comes_back_on_the_same_grid(scene, tmp_path):
  system = CopyBands("s2")
  output = str(tmp_path / "out.tif")
  stats = _run(system, {"s2": scene["s2"]}, output)
  assert system.traces == 1 and stats.batches > 2     # compiled once
  data, dataset = _read(output)
  expected, _ = _read(scene["s2"])
  grid = align.ReferenceGrid.from_raster(scene["s2"])
  assert (dataset.crs, dataset.transform) == (grid.crs, grid.transform)
  assert (dataset.width, dataset.height) == (grid.width, grid.height)
  assert dataset.count == 4 and dataset.dtypes[0] == "uint16"
  assert dataset.nodata == 0 and dataset.descriptions == ("B2", "B3", "B4", "B8")
  assert dataset.layout == "COG"
  # The run's normalization clips reflectance to [0, 1] (snow is brighter).
  np.testing.assert_allclose(data, np.minimum(expected, 10_000), atol=1)
  assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def test_disagreeing_windows_blend_without_seams(scene, tmp_path):
  """Windows differ by 0.2 (normalized, = 1000 DN): without overlap every
  window border is a step of ~1000 DN; blended, steps stay small. (Pixels
  above 9000 DN are left out: the offset is clipped at reflectance 1.)"""
  expected, _ = _read(scene["s2"])
  kept = expected < 9000

  def largest_step(overlap):
    output = str(tmp_path / f"seam_{overlap}.tif")
    _run(CopyBands("s2", offsets=(0.0, 0.2)), {"s2": scene["s2"]}, output,
         overlap=overlap, batch_size=2)
    error = _read(output)[0] - expected
    steps = []
    for axis in (1, 2):
      both = np.diff(kept.astype(int), axis=axis) == 0
      both &= np.take(kept, range(1, kept.shape[axis]), axis=axis)
      steps.append(np.abs(np.diff(error, axis=axis))[both].max())
    return max(steps)

  assert largest_step(0) > 900
  assert largest_step(16) < 150


def _edited_copy(source, target, edit):
  """Writes `target` as a copy of GeoTIFF `source` whose (bands, rows, cols)
  pixels went through `edit(data, dataset)` (in place)."""
  with rasterio.open(source) as src:
    profile, data = src.profile, src.read()
    edit(data, src)
  with rasterio.open(target, "w", **profile) as dst:
    dst.write(data)
  return str(target)


def test_nodata_where_an_input_is_missing(scene, tmp_path):
  def hole(data, _):
    data[:, 40:50, 10:30] = 0                            # the file's nodata

  holed = _edited_copy(scene["s2"], tmp_path / "s2.tif", hole)
  output = str(tmp_path / "out.tif")
  _run(CopyBands("s2"), {"s2": holed}, output)
  out, _ = _read(output)
  assert (out[:, 40:50, 10:30] == 0).all()
  outside = np.ones(out.shape[1:], bool)
  outside[39:51, 9:31] = False
  assert (out[:, outside] > 0).all()


def test_composite_keeps_clear_pixels_untouched(scene, tmp_path):
  output = str(tmp_path / "out.tif")
  system = CopyBands("s2_cloudy", bands=(0, 1, 2), offsets=(-0.3, -0.3))
  _run(system, {"s2_cloudy": scene["s2_cloudy"],
                "cloud_mask": scene["cloud_mask"]}, output, composite=True)
  out, dataset = _read(output)
  cloudy, _ = _read(scene["s2_cloudy"])
  mask, _ = _read(scene["cloud_mask"])
  clear, covered = mask[0] == 0, mask[0] == 1
  assert dataset.count == 3 and clear.any() and covered.any()
  np.testing.assert_array_equal(out[:, clear], cloudy[:3, clear])
  assert (out[:, covered] < cloudy[:3, covered]).all()   # the prediction
  with pytest.raises(ValueError, match="--composite"):
    _run(CopyBands("s2"), {"s2": scene["s2"], "cloud_mask": scene["cloud_mask"]},
         str(tmp_path / "bad.tif"), composite=True)
  assert not os.path.exists(tmp_path / "bad.tif")


def test_host_memory_does_not_grow_with_the_scene(scene, tmp_path):
  """4x the rows (5 m pixels, same width): the same peak of host arrays."""
  base = align.ReferenceGrid.from_raster(scene["s2"])
  transform = base.transform @ base.transform.scale(0.5)
  predictor = _predictor(CopyBands("s2"))
  peaks, rows_held = [], []
  for height in (48, 48, 192):       # the first run compiles
    grid = align.ReferenceGrid(base.crs, transform, width=96, height=height)
    with scene_lib.SceneReader({"s2": scene["s2"]}, grid=grid) as inputs:
      tracemalloc.start()
      stats = full_scene.predict_scene(
          predictor, inputs, str(tmp_path / f"{height}.tif"), window=32,
          overlap=8, batch_size=4, progress=False)
      peaks.append(tracemalloc.get_traced_memory()[1])
      tracemalloc.stop()
    rows_held.append(stats.peak_accumulator_rows)
    assert stats.height == height
  del peaks[0], rows_held[0]
  assert rows_held[0] == rows_held[1] == 32
  assert peaks[1] < 1.25 * peaks[0], peaks


def test_interrupted_run_leaves_no_complete_looking_file(scene, tmp_path):
  output = tmp_path / "out.tif"
  output.write_bytes(b"an older result")

  predictor = _predictor(CopyBands("s2"))
  calls = []

  def interrupted(batch):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return predictor(batch)

  interrupted.fields, interrupted.spec = predictor.fields, predictor.spec
  with scene_lib.SceneReader({"s2": scene["s2"]}) as inputs, \
      pytest.raises(KeyboardInterrupt):
    full_scene.predict_scene(interrupted, inputs, str(output), window=32,
                            overlap=8, batch_size=2, progress=False)
  assert os.listdir(tmp_path) == ["out.tif"]
  assert output.read_bytes() == b"an older result"


class CopyLandCover:
  """Segmenter double: logits = 10 x one-hot of the lulc input."""
  predict_fields, output_field, output_bands = ("lulc",), "lulc", None

  def predict(self, state, batch):
    del state
    return 10.0 * jax.nn.one_hot(batch["lulc"].astype(jnp.int32), 9)


def test_class_and_physical_outputs(scene, tmp_path):
  """Segmenter logits -> uint8 classes (nodata 255); a SAR output -> float32
  dB (the run's normalization clips it to the VV / VH ranges)."""
  classes = str(tmp_path / "classes.tif")
  _run(CopyLandCover(), {"lulc": scene["lulc"]}, classes)
  out, info = _read(classes)
  expected, _ = _read(scene["lulc"])
  assert info.dtypes == ("uint8",) and info.nodata == 255
  assert (info.descriptions, info.units) == (("class",), ("class index",))
  assert (info.scales, info.offsets) == ((1.0,), (0.0,))
  assert full_scene.LEGACY_SCALE_TAG not in info.tags
  np.testing.assert_array_equal(out, expected)
  # The class colours as the published COG's colour table, from the
  # declared hex palette written out here.
  hex_colours = fields_lib.field("lulc").display.palette
  with rasterio.open(classes) as dataset:
    table = dataset.colormap(1)
  for index, colour in enumerate(hex_colours):
    assert table[index][:3] == (colour >> 16, (colour >> 8) & 0xFF,
                                colour & 0xFF)
  sar = CopyBands("s1")
  sar.output_field = "s1"
  decibels = str(tmp_path / "s1.tif")
  _run(sar, {"s1": scene["s1"]}, decibels)
  with rasterio.open(decibels) as dataset, rasterio.open(scene["s1"]) as src:
    assert dataset.dtypes == ("float32", "float32")
    assert math.isnan(dataset.nodata)
    assert (dataset.descriptions, dataset.units) == (("VV", "VH"), ("dB",) * 2)
    assert (dataset.scales, dataset.offsets) == ((1.0,) * 2, (0.0,) * 2)
    out, linear = dataset.read(), src.read()
  expected = np.clip(10 * np.log10(np.maximum(linear, 1e-5)),
                     [[[-25.0]], [[-32.5]]], 0.0)
  np.testing.assert_allclose(out, expected, atol=2e-3)


def test_output_must_be_an_image_field():
  system = CopyBands("s2")
  system.output_field = "scene_id"
  with pytest.raises(ValueError, match="spatial output"):
    predictor_lib.output_spec(system, num_classes=9)


# ------------------------------------------------- what GIS tools read --

def test_reflectance_bands_carry_names_units_and_the_gdal_scale(scene,
                                                               tmp_path):
  """The published COG (not only the rows' file) has, per band, what
  gdalinfo and QGIS show: name, units, scale and offset, nodata; stored DN
  x scale + offset is the input's reflectance. The old `scale_factor` tag
  agrees with the band scale."""
  output = str(tmp_path / "out.tif")
  _run(CopyBands("s2", bands=(0, 2, 3)), {"s2": scene["s2"]}, output)
  stored, info = _read(output)
  assert info.layout == "COG" and os.listdir(tmp_path) == ["out.tif"]
  assert info.descriptions == ("B2", "B4", "B8")
  assert info.units == ("reflectance",) * 3
  assert info.scales == (1e-4,) * 3 and info.offsets == (0.0,) * 3
  assert info.nodata == 0
  assert float(info.tags[full_scene.LEGACY_SCALE_TAG]) == info.scales[0]
  input_dn, _ = _read(scene["s2"])
  reflectance = (stored * np.array(info.scales)[:, None, None]
                 + np.array(info.offsets)[:, None, None])
  np.testing.assert_allclose(
      reflectance, np.minimum(input_dn[[0, 2, 3]], 10_000) * 1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ("s2", "s2_cloudy", "s1", "dem", "lulc"))
def test_band_names_and_units_come_from_the_field_declaration(name):
  declared = fields_lib.field(name)
  spec = predictor_lib.output_spec(
      types.SimpleNamespace(output_field=name, output_bands=None),
      num_classes=9)
  if spec.kind == "classes":
    assert spec.descriptions == ("class",) and spec.units == declared.units
  else:
    assert spec.descriptions == declared.bands
    assert spec.units == declared.units
  assert len(spec.scales) == len(spec.offsets) == spec.count
  last = predictor_lib.output_spec(
      types.SimpleNamespace(output_field=name, output_bands=(
          declared.channels - 1,)), num_classes=9)
  if last.kind != "classes":
    assert last.descriptions == declared.bands[-1:]
    assert last.units == declared.units[-1:]


def test_output_bands_beyond_the_declared_ones_are_refused():
  system = CopyBands("s1", bands=(1, 2))
  system.output_field = "s1"
  with pytest.raises(ValueError,
                     match=r"band\(s\) \[2\] of 's1'.*'VV', 'VH'"):
    predictor_lib.output_spec(system, num_classes=9)


def test_a_run_on_other_bands_than_scene_folders_hold_is_refused():
  """A run trained on SEN1-2's B2, B3, B4 (config.data.bands) cannot be fed
  a scene folder's B2, B3, B4, B8; one on the declared bands can."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(dict(data=dict(
      name="sen1_2", bands={"s1": ("VV",), "s2": ("B2", "B3", "B4")})))
  with pytest.raises(ValueError, match=r"bands \['VV'\] of field 's1'.*"
                     r"sen1_2.*\['VV', 'VH'\]"):
    predictor_lib.check_declared_bands(config, ("s1", "s2_cloudy", "s2"))
  declared = ml_collections.ConfigDict(dict(data=dict(name="x", bands=None)))
  predictor_lib.check_declared_bands(declared, ("s1", "s2", "lulc", None))


def test_cog_writer_refuses_band_metadata_of_another_band_count(tmp_path):
  output = str(tmp_path / "out.tif")
  profile = dict(height=8, width=8, count=2, dtype="uint16", nodata=0,
                 crs="EPSG:32633", transform=affine.Affine(10, 0, 0, 0, -10, 0))
  with pytest.raises(ValueError, match=re.escape(output) + r".*3 band units"):
    cog_writer.CogWriter(output, profile, units=("dB",) * 3)
  with pytest.raises(ValueError, match="1 band scales"):
    cog_writer.CogWriter(output, profile, scales=(1.0,))
  assert os.listdir(tmp_path) == []


# --------------------------------------------------- a real trained run --

@pytest.fixture(scope="module")
def workdir(tmp_path_factory, devices):
  """pix2pix (U-Net, s1 + lulc + dem -> s2) trained one step: the test
  config of tests/train (shared compiled programs)."""
  folder = str(tmp_path_factory.mktemp("pix2pix_run"))
  trainer.train_and_evaluate(memory_config(steps=6), folder, stop_after=1)
  return folder


@pytest.fixture(scope="module")
def utm34_scene(tmp_path_factory):
  """A 20 m scene in UTM zone 34 (the grid will be 10 m in EPSG:3035)."""
  folder = tmp_path_factory.mktemp("utm34")
  synthetic.make_scene(1, folder, size=48, resolution_m=20.0,
                       crs="EPSG:32634")
  return str(folder)


def _launch_infer(workdir, scene, output, *flags):
  """`python -m launch.infer` on the tests' compilation cache."""
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
             CUDA_VISIBLE_DEVICES="",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return subprocess.run(
      [sys.executable, "-m", "launch.infer", f"--workdir={workdir}",
       f"--scene={scene}", f"--output={output}", "--window=64",
       "--overlap=16", "--batch=8", "--system=paired_gan", "--noprogress",
       *flags], cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=300)


def test_launch_infer_writes_the_trained_generator_on_the_grid(
    workdir, utm34_scene, tmp_path):
  output = str(tmp_path / "s2_pred.tif")
  result = _launch_infer(workdir, utm34_scene, output, "--crs=EPSG:3035")
  assert result.returncode == 0, result.stderr[-3000:]
  paths = [os.path.join(utm34_scene, f"{n}.tif") for n in ("lulc", "s1", "dem")]
  grid = align.reference_grid(paths, crs="EPSG:3035", resolution=10.0)
  data, dataset = _read(output)
  assert dataset.crs == grid.crs and dataset.transform == grid.transform
  assert (dataset.height, dataset.width) == grid.shape
  assert dataset.count == 4 and dataset.tags["rsjax_step"] == "1"
  assert dataset.descriptions == ("B2", "B3", "B4", "B8")
  assert dataset.units == ("reflectance",) * 4
  assert dataset.scales == (1e-4,) * 4 and dataset.offsets == (0.0,) * 4
  valid = (data > 0).all(axis=0)
  # The UTM scene is a rotated square in EPSG:3035: its grid's corners are
  # outside it (nodata), its middle is generated.
  assert not valid[0, 0] and not valid[-1, -1]
  assert valid[grid.height // 2 - 10:grid.height // 2 + 10,
               grid.width // 2 - 10:grid.width // 2 + 10].all()
  assert 0.5 < valid.mean() < 1.0
  assert os.listdir(tmp_path) == ["s2_pred.tif"]


def _copy_without(scene_dir, folder, name):
  os.makedirs(folder)
  for file in os.listdir(scene_dir):
    if file != f"{name}.tif":
      shutil.copy(os.path.join(scene_dir, file), folder)
  return folder


@pytest.mark.parametrize("case", ["missing_source", "other_system",
                                  "window_size", "overlap", "no_checkpoint"])
def test_bad_input_fails_before_any_file_is_written(
    case, workdir, utm34_scene, tmp_path):
  out_dir = tmp_path / "out"
  out_dir.mkdir()
  kwargs = dict(scene=utm34_scene, window=64, overlap=16, progress=False)
  if case == "missing_source":
    kwargs["scene"] = _copy_without(utm34_scene, str(tmp_path / "s"), "dem")
    error, match = scene_lib.SceneError, r"source 'dem'.*'dem\.tif'"
  elif case == "other_system":
    kwargs["expect_system"] = "cloud_removal"
    error, match = ValueError, "'paired_gan' run, but --system 'cloud_removal'"
  elif case == "window_size":
    kwargs["window"] = 48                  # U-Net with 5 downsamplings: 32k
    error, match = ValueError, "--window 48.*divisible by 32"
  elif case == "overlap":
    kwargs["overlap"] = 64
    error, match = ValueError, "--overlap"
  else:
    empty = tmp_path / "empty_run"
    empty.mkdir()
    shutil.copy(os.path.join(workdir, "config.json"), empty)
    workdir = str(empty)
    error, match = FileNotFoundError, "no checkpoint"
  with pytest.raises(error, match=match):
    full_scene.infer(workdir, output=str(out_dir / "out.tif"), **kwargs)
  assert os.listdir(out_dir) == []


# ------------------------------------------------------------- guards --
#
# Each refusal is checked for its exception (or exit status), for a message
# that names what to fix (CRS, flag, file, band, output), and for an output
# folder left empty: no output, no hidden rows file, no temporary file.

UTM34_CENTRE = (500_000.0, 5_190_000.0)   # make_scene's default centre


def _output_folder(tmp_path):
  """An empty folder for an output that must not be written."""
  folder = tmp_path / "out"
  folder.mkdir()
  return folder


def _assert_refused(message, texts, folder):
  """The message names every text; `folder` is still empty (no output, no
  hidden rows file, no temporary file)."""
  for text in texts:
    assert text in message
  assert os.listdir(folder) == []


def _utm34_centre_lonlat():
  lon, lat = rasterio.warp.transform("EPSG:32634", "EPSG:4326",
                                     [UTM34_CENTRE[0]], [UTM34_CENTRE[1]])
  return lon[0], lat[0]


def _polar_stereographic_scale(lat):
  """Scale of south polar stereographic, true at 71 S, on the sphere."""
  true_scale = math.radians(-71.0)
  return (1 - math.sin(true_scale)) / (1 - math.sin(math.radians(lat)))


def _scale_in(message):
  return float(re.search(r"scale factor is ([0-9.]+)", message).group(1))


@pytest.fixture(scope="module")
def dataset_workdir(workdir, synthetic_tiny, tmp_path_factory):
  """The trained run, its config.json naming rs_multisource/synthetic_tiny
  as its data: a run whose training grid (10 m, UTM 33N tiles) is known."""
  folder = str(tmp_path_factory.mktemp("dataset_run") / "run")
  shutil.copytree(workdir, folder)
  config_path = os.path.join(folder, "config.json")
  with open(config_path) as f:
    config = json.load(f)
  config["data"].update(source="tfds", name="rs_multisource/synthetic_tiny",
                        data_dir=synthetic_tiny)
  with open(config_path, "w") as f:
    json.dump(config, f)
  return folder


def test_training_grid_is_read_from_the_run_s_dataset(
    workdir, dataset_workdir, tmp_path):
  """synthetic_tiny's scenes are make_scene's defaults: 10 m in UTM 33N."""
  defaults = inspect.signature(synthetic.make_scene).parameters
  known = training_grid.of_run(run_config.load(dataset_workdir))
  assert known.resolution == defaults["resolution_m"].default == 10.0
  assert known.crs == rasterio.crs.CRS.from_user_input(
      defaults["crs"].default)
  assert "rs_multisource/synthetic_tiny" in known.source
  memory = training_grid.of_run(run_config.load(workdir))
  assert memory.resolution is None and "data.source='memory'" in memory.source
  config = run_config.load(dataset_workdir)
  config.data.data_dir = str(tmp_path / "elsewhere")
  missing = training_grid.of_run(config)
  assert missing.resolution is None and str(tmp_path) in missing.source


def test_resolution_factor_is_two_either_way():
  trained = training_grid.TrainingGrid(10.0, None, "test")
  for pixel, refused in ((5.0, False), (20.0, False), (4.9, True),
                         (20.5, True)):
    grid = align.ReferenceGrid(
        rasterio.crs.CRS.from_epsg(32634),
        affine.Affine(pixel, 0, UTM34_CENTRE[0], 0, -pixel, UTM34_CENTRE[1]),
        width=10, height=10)
    if refused:
      with pytest.raises(grid_checks.GridError, match="--resolution"):
        grid_checks.check_resolution(grid, trained)
    else:
      grid_checks.check_resolution(grid, trained)


GRID_CASES = {
    # case: (run, infer arguments, exception text)
    "geographic_crs": ("memory", dict(crs="EPSG:4326"), [
        "--crs EPSG:4326", "geographic", "--crs EPSG:32634"]),
    "crs_in_feet": ("memory", dict(crs="EPSG:2263"), [
        "--crs EPSG:2263", "US survey foot", "--crs EPSG:32634"]),
    "polar_stereographic": ("memory", dict(crs="EPSG:3031"), [
        "--crs EPSG:3031", "scale factor is", "--crs EPSG:32634"]),
    "web_mercator": ("memory", dict(crs="EPSG:3857"), [
        "--crs EPSG:3857", "scale factor is", "--crs EPSG:32634"]),
    "resolution_4x_coarser": ("dataset", dict(resolution=40.0), [
        "--resolution 40 m is 4 x the 10 m", "synthetic_tiny",
        "--allow_resolution_mismatch"]),
    "resolution_2.5x_finer": ("dataset", dict(resolution=4.0), [
        "--resolution 4 m is 0.4 x the 10 m", "--resolution 10",
        "--allow_resolution_mismatch"]),
}


@pytest.mark.parametrize("case", GRID_CASES)
def test_grid_that_distorts_the_scale_is_refused_before_any_file(
    case, workdir, dataset_workdir, utm34_scene, tmp_path):
  run, kwargs, texts = GRID_CASES[case]
  out_dir = _output_folder(tmp_path)
  with pytest.raises(grid_checks.GridError) as refused:
    full_scene.infer(workdir if run == "memory" else dataset_workdir,
                     utm34_scene, str(out_dir / "out.tif"), window=64,
                     overlap=16, progress=False, **kwargs)
  message = str(refused.value)
  _assert_refused(message, texts, out_dir)
  lon, lat = _utm34_centre_lonlat()
  if case == "polar_stereographic":   # the sphere's value; the ellipsoid's
    # flattening (1/298) moves it by about 1 %
    assert _scale_in(message) == pytest.approx(
        _polar_stereographic_scale(lat), rel=0.02)
  if case == "web_mercator":          # spherical Mercator: 1 / cos(lat)
    assert _scale_in(message) == pytest.approx(
        1 / math.cos(math.radians(lat)), rel=1e-2)


def test_resolution_mismatch_runs_when_allowed(
    dataset_workdir, utm34_scene, tmp_path, caplog):
  output = str(tmp_path / "out.tif")
  with caplog.at_level(logging.WARNING):
    full_scene.infer(dataset_workdir, utm34_scene, output, window=64,
                     overlap=16, progress=False, resolution=40.0,
                     allow_resolution_mismatch=True)
  assert "--allow_resolution_mismatch" in caplog.text
  _, written = _read(output)
  assert written.transform.a == 40.0 and written.transform.e == -40.0


def test_scene_is_read_at_the_training_resolution_by_default(
    workdir, utm34_scene, tmp_path, monkeypatch):
  trained = training_grid.TrainingGrid(20.0, None, "a 20 m dataset")
  monkeypatch.setattr(training_grid, "of_run", lambda config: trained)
  output = str(tmp_path / "out.tif")
  full_scene.infer(workdir, utm34_scene, output, window=64, overlap=16,
                   progress=False)
  _, written = _read(output)
  assert written.transform.a == 20.0 and written.transform.e == -20.0


def test_terrain_is_derived_at_the_dem_resolution_of_the_run_s_tiles(
    workdir, utm34_scene, tmp_path, monkeypatch):
  """A run whose dataset computed its terrain bands at 30 m (rs_multisource
  geotiff 1.2.0, RS-SPADE Sec. 2.1) gets the scene's terrain at 30 m too:
  infer writes what predict_scene writes from a reader at dem_resolution
  30, and not what it writes with the terrain of the 10 m grid."""
  coarse = training_grid.TrainingGrid(10.0, None, "30 m terrain",
                                      terrain_resolution=30.0)
  outputs = {}
  for name, trained in (("coarse", coarse), ("fine", dataclasses.replace(
      coarse, terrain_resolution=None))):
    monkeypatch.setattr(training_grid, "of_run", lambda config, t=trained: t)
    outputs[name] = str(tmp_path / f"{name}.tif")
    full_scene.infer(workdir, utm34_scene, outputs[name], window=64,
                     overlap=16, progress=False)
  predictor = predictor_lib.load_predictor(workdir, window=64, batch_size=8)
  paths = scene_lib.find_sources(utm34_scene, ("s1", "lulc", "dem"))
  direct = str(tmp_path / "direct.tif")
  with scene_lib.SceneReader(paths, resolution=10.0,
                             dem_resolution=30.0) as inputs:
    full_scene.predict_scene(predictor, inputs, direct, window=64,
                             overlap=16, progress=False)
  coarse_pixels, fine_pixels = _read(outputs["coarse"])[0], _read(
      outputs["fine"])[0]
  np.testing.assert_array_equal(coarse_pixels, _read(direct)[0])
  assert not np.array_equal(coarse_pixels, fine_pixels)
  grid = types.SimpleNamespace(res=(10.0, 10.0))
  assert full_scene.terrain_resolution(coarse, grid) == 30.0
  for res in (30.0, 40.0):   # not finer than the grid: on the grid
    assert full_scene.terrain_resolution(coarse, types.SimpleNamespace(
        res=(res, res))) is None


def _scene_with_edited(scene_dir, tmp_path, name, edit):
  """A copy of a scene folder whose `name`.tif went through `edit`."""
  folder = _copy_without(scene_dir, str(tmp_path / "scene"), name)
  _edited_copy(os.path.join(scene_dir, f"{name}.tif"),
               os.path.join(folder, f"{name}.tif"), edit)
  return folder


def _nan_band_1(data, _):
  data[0] = np.nan


def _nan_over_the_grid(data, dem):
  """NaN where the grid lies; the DEM's margin beyond it keeps data."""
  scene_dir = os.path.dirname(dem.name)
  grid = align.reference_grid(
      [os.path.join(scene_dir, f"{n}.tif") for n in ("lulc", "s1", "dem")])
  bounds = rasterio.warp.transform_bounds(grid.crs, dem.crs, *grid.bounds)
  window = rasterio.windows.from_bounds(*bounds, transform=dem.transform)
  rows, cols = window.round_offsets(op="floor").round_lengths(op="ceil") \
      .toslices()
  data[:, max(rows.start - 1, 0):rows.stop + 1,
       max(cols.start - 1, 0):cols.stop + 1] = np.nan
  assert np.isfinite(data).any()


def _class_200(data, _):
  data[:] = 200                 # not the nodata value, outside classes 0..8


def _to_db(data, _):
  data[:] = 10 * np.log10(np.maximum(data, 1e-6))


def _zero_is_nodata(data, _):
  data[:] = 0


# Sources of INPUT_CASES read by the CopyBands double through predict_scene:
# {source: the input bands it copies into the 4-band output}.
DIRECT_CASES = {"s2": None, "lulc": (0, 1, 2, 3)}
INPUT_CASES = {
    # case: (source, edit, texts); pix2pix reads s1, lulc, dem; infer stops
    # codes outside the class table earlier (see the units test below)
    "s1_vv_all_nan": ("s1", _nan_band_1, ["s1.tif: band 1 (VV)"]),
    "dem_nan_over_the_grid": ("dem", _nan_over_the_grid,
                              ["dem.tif: band 1 (elevation)"]),
    "lulc_outside_the_classes": ("lulc", _class_200, [
        "lulc.tif: band 1 (label) of source 'lulc' is NaN or nodata or "
        "outside the classes 0..8"]),
    # an optical input (the CopyBands double reads s2)
    "s2_all_nodata": ("s2", _zero_is_nodata, [
        f"s2.tif: band {i} ({b})" for i, b in enumerate(
            ("B2", "B3", "B4", "B8"), start=1)]),
}


def test_inputs_in_other_units_than_declared_stop_before_the_restore(
    workdir, utm34_scene, tmp_path, monkeypatch):
  """infer checks every input file against --s2_scale / --s1_units and the
  class table (rsjax.geo.units) before it restores the run."""
  def restore_not_reached(*args, **kwargs):
    raise AssertionError("the checkpoint was restored")

  output = str(_output_folder(tmp_path) / "out.tif")
  monkeypatch.setattr(predictor_lib.trained, "load_run", restore_not_reached)

  def refused(name, edit, texts):
    folder = _scene_with_edited(utm34_scene, tmp_path / name, name, edit)
    with pytest.raises(geo_units.UnitsError) as raised:
      full_scene.infer(workdir, folder, output, window=64, overlap=16,
                       progress=False)
    _assert_refused(str(raised.value), texts, os.path.dirname(output))
    return folder, raised.value

  refused("lulc", _class_200, ["lulc.tif: band 1 (label) of source 'lulc'",
                               "codes [200]"])
  # s1 in dB: the message names the flag that reads it, and the flag does.
  folder, error = refused("s1", _to_db, [
      "s1.tif: band 1 (VV)", "pass --s1_units=db to launch.infer"])
  assert error.setting == "--s1_units=db"
  monkeypatch.undo()
  full_scene.infer(workdir, folder, output, window=64, overlap=16,
                   progress=False, s1_units="db")
  assert os.path.exists(output)


@pytest.mark.parametrize("case", INPUT_CASES)
def test_input_band_without_data_is_refused_before_anything_runs(
    case, workdir, scene, utm34_scene, tmp_path):
  name, edit, texts = INPUT_CASES[case]
  output = str(_output_folder(tmp_path) / "out.tif")
  if name in DIRECT_CASES:   # predict_scene itself, past infer's units check
    empty = _edited_copy(scene[name], tmp_path / f"{name}.tif", edit)
    system = CopyBands(name, bands=DIRECT_CASES[name])
    with pytest.raises(nodata_checks.NoDataError) as refused:
      _run(system, {name: empty}, output)
    assert system.traces == 0                    # nothing was predicted
  else:
    folder = _scene_with_edited(utm34_scene, tmp_path, name, edit)
    with pytest.raises(nodata_checks.NoDataError) as refused:
      full_scene.infer(workdir, folder, output, window=64, overlap=16,
                       progress=False)
  _assert_refused(str(refused.value), texts, os.path.dirname(output))
  assert len(refused.value.problems) == len(texts)


def test_a_band_is_scanned_strip_by_strip_only_over_the_grid(
    scene, tmp_path, monkeypatch):
  """VV holds one valid pixel, in the last row; VH none. Read one row at a
  time, the scan finds VV's pixel on the grid of the whole file, and none on
  a grid of the file's top half."""
  def last_pixel_only(data, _):
    data[0, :-1, :] = np.nan
    data[0, -1, :-1] = np.nan
    data[1] = np.nan

  path = _edited_copy(scene["s1"], tmp_path / "s1.tif", last_pixel_only)
  whole = align.ReferenceGrid.from_raster(path)
  top_half = align.ReferenceGrid(whole.crs, whole.transform, whole.width,
                                 whole.height // 2)
  monkeypatch.setattr(nodata_checks, "STRIP_PIXELS", whole.width)
  with rasterio.open(path) as dataset:
    assert nodata_checks.empty_bands(dataset, whole) == [2]
    assert nodata_checks.empty_bands(dataset, top_half) == [1, 2]


def _inputs_that_do_not_meet(scene, folder):
  """s2 has data in the west, s1 in the east (3.5 px shifted): no pixel has
  both."""
  def west(data, _):
    data[:, :, 48:] = 0

  def east(data, _):
    data[:, :, :50] = np.nan

  system = CopyBands("s2")
  system.predict_fields = ("s2", "s1")
  return system, {
      "s2": _edited_copy(scene["s2"], folder / "s2.tif", west),
      "s1": _edited_copy(scene["s1"], folder / "s1.tif", east)}


OUTPUT_CASES = {
    "inputs_do_not_meet": (_inputs_that_do_not_meet,
                           ["out.tif: not written", "do not meet"]),
    "prediction_not_finite": (
        lambda scene, _: (CopyBands("s2", offsets=(np.nan, np.nan)),
                          {"s2": scene["s2"]}),
        ["out.tif: not written", "not finite"]),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_that_would_be_all_nodata_is_not_written(case, scene,
                                                        tmp_path):
  make, texts = OUTPUT_CASES[case]
  system, paths = make(scene, tmp_path)
  out_dir = _output_folder(tmp_path)
  with pytest.raises(nodata_checks.NoDataError) as refused:
    _run(system, paths, str(out_dir / "out.tif"))
  _assert_refused(str(refused.value), texts, out_dir)


LAUNCH_CASES = {
    # the two examples of issue 18: a polar CRS, an all-NaN S1 band
    "polar_crs": (None, None, ["--crs=EPSG:3031"], [
        "--crs EPSG:3031", "scale factor", "--crs EPSG:32634"]),
    "s1_vv_all_nan": ("s1", _nan_band_1, [], ["s1.tif: band 1 (VV)"]),
    # issue 16: units checked at the door
    "s1_in_db_read_as_linear": ("s1", _to_db, [], [
        "s1.tif: band 1 (VV)", "pass --s1_units=db to launch.infer"]),
}


@pytest.mark.parametrize("case", LAUNCH_CASES)
def test_launch_infer_refusal_exits_1_and_writes_nothing(
    case, workdir, utm34_scene, tmp_path):
  name, edit, flags, texts = LAUNCH_CASES[case]
  folder = utm34_scene
  if name is not None:
    folder = _scene_with_edited(utm34_scene, tmp_path, name, edit)
  out_dir = _output_folder(tmp_path)
  result = _launch_infer(workdir, folder, str(out_dir / "out.tif"), *flags)
  assert result.returncode == 1, result.stderr[-3000:]
  _assert_refused(result.stderr, texts, out_dir)
  assert "Traceback" not in result.stderr
