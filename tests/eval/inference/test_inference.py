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
errors are checked against it.
"""

import os
import shutil
import subprocess
import sys
import tracemalloc
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rasterio

from rsjax.data import normalize
from rsjax.eval.inference import full_scene
from rsjax.eval.inference import predictor as predictor_lib
from rsjax.geo import align, synthetic
from rsjax.geo import scene as scene_lib
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


def test_nodata_where_an_input_is_missing(scene, tmp_path):
  holed = str(tmp_path / "s2.tif")
  with rasterio.open(scene["s2"]) as src:
    profile, data = src.profile, src.read()
  data[:, 40:50, 10:30] = 0                              # the file's nodata
  with rasterio.open(holed, "w", **profile) as dst:
    dst.write(data)
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
  np.testing.assert_array_equal(out, expected)
  sar = CopyBands("s1")
  sar.output_field = "s1"
  decibels = str(tmp_path / "s1.tif")
  _run(sar, {"s1": scene["s1"]}, decibels)
  with rasterio.open(decibels) as dataset, rasterio.open(scene["s1"]) as src:
    assert dataset.dtypes == ("float32", "float32")
    out, linear = dataset.read(), src.read()
  expected = np.clip(10 * np.log10(np.maximum(linear, 1e-5)),
                     [[[-25.0]], [[-32.5]]], 0.0)
  np.testing.assert_allclose(out, expected, atol=2e-3)


def test_output_must_be_an_image_field():
  system = CopyBands("s2")
  system.output_field = "scene_id"
  with pytest.raises(ValueError, match="spatial output"):
    predictor_lib.output_spec(system, num_classes=9)


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


def test_launch_infer_writes_the_trained_generator_on_the_grid(
    workdir, utm34_scene, tmp_path):
  output = str(tmp_path / "s2_pred.tif")
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
             CUDA_VISIBLE_DEVICES="",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  result = subprocess.run(
      [sys.executable, "-m", "launch.infer", f"--workdir={workdir}",
       f"--scene={utm34_scene}", f"--output={output}", "--window=64",
       "--overlap=16", "--batch=8", "--crs=EPSG:3035", "--system=paired_gan",
       "--noprogress"], cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  paths = [os.path.join(utm34_scene, f"{n}.tif") for n in ("lulc", "s1", "dem")]
  grid = align.reference_grid(paths, crs="EPSG:3035", resolution=10.0)
  data, dataset = _read(output)
  assert dataset.crs == grid.crs and dataset.transform == grid.transform
  assert (dataset.height, dataset.width) == grid.shape
  assert dataset.count == 4 and dataset.tags["rsjax_step"] == "1"
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
