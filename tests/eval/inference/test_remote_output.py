"""A Cloud-Optimized GeoTIFF written to object storage (issue 22): its rows
stream to a local temporary file, and the finished COG is uploaded to the
`gs://` output whole, georeferenced and tiled, leaving nothing behind
locally. The bucket is a GCS emulator (`gcs_emulator`); the writer runs in a
subprocess that reaches it through gcsfs."""

import numpy as np
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

import gcs_emulator

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
