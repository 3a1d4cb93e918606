"""Inference on object storage (issue 22). A Cloud-Optimized GeoTIFF written
to a `gs://` output: its rows stream to a local temporary file, and the
finished COG is uploaded whole, georeferenced and tiled, leaving nothing
behind locally. A scene folder there (`launch.infer --scene gs://...`) is
read through local copies that are removed at the end. The bucket is a GCS
emulator (`gcs_emulator`); the writer and `launch.infer` run in subprocesses
that reach it through gcsfs."""

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

import gcs_emulator
from rsjax.geo import synthetic
from rsjax.train import trainer
from tiny_configs import memory_config

_WRITE = """
import sys
import numpy as np
from rasterio.transform import from_origin
from rsjax.eval.inference import cog_writer
profile = dict(height=300, width=200, count=2, dtype="uint16", nodata=0,
               crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10))
data = np.arange(2 * 300 * 200, dtype=np.uint16).reshape(2, 300, 200) % 9973 + 1
with cog_writer.CogWriter(sys.argv[1], profile, blocksize=128,
                          descriptions=("B4", "B8")) as writer:
  print(writer.partial)
  for row in range(0, 300, 64):
    writer.write_rows(row, data[:, row:row + 64])
"""


def test_a_cog_output_on_gs_is_uploaded_whole(tmp_path):
  (tmp_path / "tmp").mkdir()
  (tmp_path / "cwd").mkdir()
  output = f"gs://{gcs_emulator.BUCKET}/scenes/area_1.tif"
  with gcs_emulator.running() as (url, bucket):
    result = gcs_emulator.run(url, tmp_path / "cwd", "-c", _WRITE, output,
                              TMPDIR=str(tmp_path / "tmp"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(str(tmp_path / "tmp"))  # rows: local
    assert bucket.names("scenes") == {"area_1.tif"}
    written = bucket.read("scenes/area_1.tif")
  expected = (np.arange(2 * 300 * 200, dtype=np.uint16).reshape(2, 300, 200)
              % 9973 + 1)
  with MemoryFile(written) as memory, memory.open() as cog:
    assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert cog.crs == rasterio.crs.CRS.from_epsg(32633)
    assert cog.transform == from_origin(500000, 4000000, 10, 10)
    assert cog.block_shapes == [(128, 128)] * 2
    assert cog.descriptions == ("B4", "B8")
    np.testing.assert_array_equal(cog.read(), expected)
  assert list((tmp_path / "cwd").iterdir()) == []
  assert list((tmp_path / "tmp").iterdir()) == []


# -- a scene on object storage ------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory, devices):
  """pix2pix (s1 + lulc + dem -> s2) trained one step (the tests' config)."""
  folder = str(tmp_path_factory.mktemp("pix2pix_run"))
  trainer.train_and_evaluate(memory_config(steps=6), folder, stop_after=1)
  return folder


def _infer(url, cwd, workdir, scene, output, *flags, **env):
  return gcs_emulator.run(
      url, cwd, "-m", "launch.infer", f"--workdir={workdir}",
      f"--scene={scene}", f"--output={output}", "--window=64", "--overlap=16",
      "--batch=8", "--noprogress", "--crs=EPSG:3035", *flags, **env)


def test_launch_infer_reads_a_scene_on_gs(workdir, tmp_path):
  """A scene folder in the bucket (and its DEM elsewhere in it, given by
  --source) gives the same COG as the same files on disk, written back to
  the bucket; the downloaded copies are gone afterwards. A folder lacking a
  source is refused naming it, before anything is written."""
  scene = tmp_path / "scene"
  synthetic.make_scene(1, scene, size=48, resolution_m=20.0, crs="EPSG:32634")
  for name in ("tmp", "cwd"):
    (tmp_path / name).mkdir()
  env = dict(TMPDIR=str(tmp_path / "tmp"))
  folder = f"gs://{gcs_emulator.BUCKET}/scenes/utm34"
  with gcs_emulator.running() as (url, bucket):
    for name in ("s1", "lulc", "s2"):
      bucket.write(f"scenes/utm34/{name}.tif",
                   (scene / f"{name}.tif").read_bytes())
    bucket.write("dems/dem.tif", (scene / "dem.tif").read_bytes())

    local = _infer(url, tmp_path / "cwd", workdir, scene,
                   tmp_path / "local.tif")
    assert local.returncode == 0, local.stderr[-3000:]
    remote = _infer(url, tmp_path / "cwd", workdir, folder,
                    f"gs://{gcs_emulator.BUCKET}/out/pred.tif",
                    f"--source=dem=gs://{gcs_emulator.BUCKET}/dems/dem.tif",
                    **env)
    assert remote.returncode == 0, remote.stderr[-3000:]
    written = bucket.read("out/pred.tif")

    refused = _infer(url, tmp_path / "cwd", workdir,
                     f"gs://{gcs_emulator.BUCKET}/dems",
                     f"gs://{gcs_emulator.BUCKET}/out/refused.tif", **env)
    assert refused.returncode != 0
    assert "no file for source 's1'" in refused.stderr
    assert f"gs://{gcs_emulator.BUCKET}/dems" in refused.stderr
    assert bucket.names("out") == {"pred.tif"}

  with rasterio.open(tmp_path / "local.tif") as expected, \
      MemoryFile(written) as memory, memory.open() as got:
    assert got.crs == expected.crs and got.transform == expected.transform
    assert got.tags()["rsjax_step"] == expected.tags()["rsjax_step"] == "1"
    np.testing.assert_array_equal(got.read(), expected.read())
    assert (got.read() > 0).any()
  assert list((tmp_path / "cwd").iterdir()) == []
  assert list((tmp_path / "tmp").iterdir()) == []
