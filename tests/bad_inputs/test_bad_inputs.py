"""The bad-input corpus (issue 18): what a new user gets wrong, one row each.

`CASES` is one table of `BadInput` rows over rasters, datasets, configs,
checkpoints, workdirs and inference inputs. A row's `make` builds the bad
input inside the case's own folder (from fixtures built once per module: a
small synthetic scene, a tiny pix2pix run trained 2 steps, the session's
rs_multisource/synthetic_tiny) and returns what its `run` needs; `run` calls
a public entry point (scene.find_sources / SceneReader, align, pipeline,
launch.user_errors' flag parsing, trainer.train_and_evaluate,
trained.load_run, checkpoint.restore, full_scene.infer, or a launcher as a
process). Every row asserts

- the exception type, or the exit status (SystemExit's code, a process's
  return code),
- that the message names each text of `must_name` (str.format'ed with what
  `make` returned: the offending file, key, band or step),
- that the case's folder is left as `make` left it: no output, no workdir of
  a refused run, no temporary file, nothing moved or rewritten.

To add a case, append a `BadInput` to `CASES`: a name saying what is wrong,
a maker (reuse the `_scene_with`, `_trained_copy`, ... helpers below), a
runner, the expected exception type or status and the texts the message must
name. A case that shows a bug not yet fixed gets `xfail="issue N: ..."` (run
as a strict xfail).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io as std_io
import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

import checkpoint_damage
import train_processes
from rsjax.data import pipeline
from rsjax.data import tfds_builder
from rsjax.eval.inference import full_scene
from rsjax.eval.inference import grid_checks
from rsjax.eval.inference import nodata_checks
from rsjax.geo import align
from rsjax.geo import bands as geo_bands
from rsjax.geo import io as geo_io
from rsjax.geo import scene as scene_lib
from rsjax.geo import synthetic
from rsjax.geo import units as geo_units
from rsjax.store import checkpoint
from rsjax.store import run_config
from rsjax.store import workdir_lock
from rsjax.systems import trained
from rsjax.train import trainer
from test_user_errors import _parse as parse_config_flags
from tests.eval.inference.test_inference import _edited_copy
from tests.geo.test_io import write_raster
from tiny_configs import memory_config

# A failed Orbax restore leaves the coroutines of its other array reads never
# awaited; Python reports each when it is collected.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")

SCENE_SOURCES = ("s2", "s1", "lulc", "dem")
"""The scene's files; the tiny pix2pix run reads s1, lulc and dem."""


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How a command ended: its exit status and what it printed."""
  status: int
  message: str


@dataclasses.dataclass(frozen=True)
class BadInput:
  """One bad input: `make(context) -> made` builds it, `run(made)` feeds it
  to the code under test, which must raise `expect` (an exception type) or
  end with status `expect` (an int; `run` returns an `Outcome`), naming
  every `must_name` text (formatted with `made`), and leave
  `made[leaves_nothing_in]` (and the shared scene and run) as they were."""
  name: str
  make: Callable[[Any], dict]
  run: Callable[[dict], Any]
  expect: type[BaseException] | tuple[type[BaseException], ...] | int
  must_name: tuple[str, ...]
  leaves_nothing_in: str = "folder"
  xfail: str | None = None


# ------------------------------------------------------------ fixtures --

@pytest.fixture(scope="module")
def scene(tmp_path_factory):
  """A 64-pixel synthetic scene (10 m, UTM 33N): s2, s1, lulc, dem."""
  folder = tmp_path_factory.mktemp("scene")
  synthetic.make_scene(5, folder, size=64)
  return str(folder)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, devices):
  """The tiny pix2pix run of tests/train, stopped after step 2 (checkpoints
  1 and 2); used as is or copied by a maker before it is damaged."""
  del devices
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  trainer.train_and_evaluate(memory_config(steps=6), workdir, stop_after=2)
  assert checkpoint.steps(workdir) == [1, 2]
  return workdir


@dataclasses.dataclass
class Context:
  """What makers build from: the case's empty folder and shared inputs."""
  folder: str
  scene: str
  trained_run: str
  data_dir: str
  cleanup: contextlib.ExitStack
  """Undoes what a maker holds (a lock, a read-only folder) after the
  case's checks."""


@pytest.fixture
def context(tmp_path, scene, trained_run, synthetic_tiny):
  folder = tmp_path / "case"
  folder.mkdir()
  with contextlib.ExitStack() as cleanup:
    yield Context(str(folder), scene, trained_run, synthetic_tiny, cleanup)


def _snapshot(folder) -> dict[str, tuple]:
  """Every entry under `folder`: (is a folder, size, content time); a
  folder's time is left out, as it changes when a file is made and removed
  again (a lock's temporary file)."""
  entries = {}
  for parent, folders, files in os.walk(folder):
    for name in folders + files:
      path = os.path.join(parent, name)
      stat = os.lstat(path)
      is_folder = os.path.isdir(path)  # its time changes with a temporary file
      entries[os.path.relpath(path, folder)] = (
          (True, 0, 0) if is_folder else (False, stat.st_size,
                                          stat.st_mtime_ns))
  return entries


# -------------------------------------------------------------- makers --

def _scene_copy(context) -> str:
  """A copy of the shared scene's four sources in the case's folder."""
  folder = os.path.join(context.folder, "scene")
  os.makedirs(folder)
  for name in SCENE_SOURCES:
    shutil.copy(os.path.join(context.scene, f"{name}.tif"), folder)
  return folder


def _made(context, scene_folder, name, **more) -> dict:
  return dict(folder=context.folder, scene=scene_folder,
              file=os.path.join(scene_folder, f"{name}.tif"),
              output=os.path.join(context.folder, "out.tif"), **more)


def _scene_with(name, edit) -> Callable:
  """A maker: the scene copied, `name`.tif's pixels through
  `edit(data, dataset)`."""
  def make(context):
    folder = _scene_copy(context)
    path = os.path.join(folder, f"{name}.tif")
    _edited_copy(path, path, edit)
    return _made(context, folder, name)
  return make


def _scene_rewritten(name, rewrite) -> Callable:
  """A maker: the scene copied, `name`.tif written anew as
  `rewrite(data, profile) -> (data, write_raster's keywords)`, by default
  with the file's CRS, nodata and transform."""
  def make(context):
    folder = _scene_copy(context)
    path = os.path.join(folder, f"{name}.tif")
    with rasterio.open(path) as dataset:
      data, profile = dataset.read(), dataset.profile
    data, kwargs = rewrite(data, profile)
    os.remove(path)
    write_raster(path, data, **{"crs": profile["crs"], "nodata":
                                profile["nodata"], "transform":
                                profile["transform"], **kwargs})
    return _made(context, folder, name)
  return make


def _scene_file_bytes(name, content: Callable[[bytes], bytes]) -> Callable:
  """A maker: the scene copied, `name`.tif's bytes replaced by
  `content(its bytes)`."""
  def make(context):
    folder = _scene_copy(context)
    path = os.path.join(folder, f"{name}.tif")
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(content(data))
    return _made(context, folder, name)
  return make


def _scene_without(name) -> Callable:
  def make(context):
    folder = _scene_copy(context)
    os.remove(os.path.join(folder, f"{name}.tif"))
    return _made(context, folder, name)
  return make


def _scene_plus(name, extra) -> Callable:
  """A maker: the scene copied with a second file `extra` matching `name`'s
  pattern when given one."""
  def make(context):
    folder = _scene_copy(context)
    shutil.copy(os.path.join(folder, f"{name}.tif"),
                os.path.join(folder, extra))
    return _made(context, folder, name)
  return make


def _scene_copy_made(context) -> dict:
  return _made(context, _scene_copy(context), "s1")


def _shared_scene(context) -> dict:
  return _made(context, context.scene, "s2")


def _nan_band(index):
  def edit(data, _):
    data[index] = np.nan
  return edit


def _fill(value):
  def edit(data, _):
    data[:] = value
  return edit


def _without_crs(data, profile):
  del profile
  return data, dict(crs=None)


def _without_geotransform(data, profile):
  del profile
  return data, dict(transform=rasterio.Affine.identity())


def _first_bands(count):
  return lambda data, profile: (data[:count], {})


def _band_repeated(count):
  return lambda data, profile: (np.concatenate([data] * count), {})


def _as_reflectance(data, profile):
  """uint16 DN as float32 reflectance."""
  del profile
  return data.astype(np.float32) / 10_000, {}


def _to_db(data, _):
  data[:] = 10 * np.log10(data)


def _moved_far_away(data, profile):
  transform = profile["transform"]
  return data, dict(transform=transform @ transform.translation(5000, 0))


def _trained_copy(context) -> str:
  copy = os.path.join(context.folder, "run")
  shutil.copytree(context.trained_run, copy)
  return copy


def _damaged(*damages_by_step) -> Callable:
  """A maker: a copy of the trained run with damage (step, name) done."""
  def make(context):
    workdir = _trained_copy(context)
    for step, name in damages_by_step:
      checkpoint_damage.damage(workdir, step, name)
    return dict(folder=context.folder, workdir=workdir)
  return make


def _trained_copy_made(context) -> dict:
  return dict(folder=context.folder, workdir=_trained_copy(context))


def _trained_copy_without(*names) -> Callable:
  def make(context):
    workdir = _trained_copy(context)
    for name in names:
      path = os.path.join(workdir, name)
      (shutil.rmtree if os.path.isdir(path) else os.remove)(path)
    return dict(folder=context.folder, workdir=workdir)
  return make


def _dataset_run(context) -> dict:
  """A copy of the trained run whose config.json names synthetic_tiny as
  its data, so its training grid (10 m, UTM 33N) is known."""
  made = _trained_copy_made(context)
  config = run_config.load(made["workdir"])
  config.data.update(dict(source="tfds", name="rs_multisource/synthetic_tiny",
                          data_dir=context.data_dir))
  run_config.save(made["workdir"], config)
  return dict(made, scene=context.scene,
              output=os.path.join(context.folder, "out.tif"))


def _with_run(make_scene) -> Callable:
  """A maker: `make_scene`'s scene, and the shared trained run."""
  def make(context):
    return dict(make_scene(context), workdir=context.trained_run)
  return make


def _inputs_that_never_meet(context) -> dict:
  """s1 has data in the west half only, lulc in the east half only: no
  pixel has every input, so the output would be nodata everywhere."""
  folder = _scene_copy(context)
  for name, columns in (("s1", np.s_[:, :, 30:]), ("lulc", np.s_[:, :, :34])):
    def edit(data, dataset, columns=columns):
      data[columns] = np.nan if data.dtype.kind == "f" else dataset.nodata
    path = os.path.join(folder, f"{name}.tif")
    _edited_copy(path, path, edit)
  return dict(_made(context, folder, "s1"), workdir=context.trained_run)


def _data(context, **overrides) -> dict:
  made = dict(folder=context.folder, data_dir=context.data_dir,
              data=dict(name="rs_multisource/synthetic_tiny",
                        data_dir=context.data_dir, batch_size=8,
                        fields=("s2",)), eval_split=None)
  made["data"].update(overrides)
  return made


def _dataset(eval_split=None, **overrides) -> Callable:
  def make(context):
    return dict(_data(context, **overrides), eval_split=eval_split)
  return make


def _not_built(name) -> Callable:
  def make(context):
    data_dir = os.path.join(context.folder, "tensorflow_datasets")
    made = _data(context, name=name, data_dir=data_dir)
    return dict(made, data_dir=data_dir)
  return make


def _config(**overrides) -> Callable:
  """A maker: the tiny pix2pix config with `overrides`, and a workdir in
  the case's folder that must not be created."""
  def make(context):
    config = memory_config(steps=2)
    config.update(overrides)
    return dict(folder=context.folder, config=config,
                workdir=os.path.join(context.folder, "run"))
  return make


def _config_changed(change) -> Callable:
  """A maker: `_config()`'s, its config changed by `change(config)`."""
  def make(context):
    made = _config()(context)
    change(made["config"])
    return made
  return make


def _dataset_config(**data) -> Callable:
  """A maker: the tiny config reading synthetic_tiny with `data` set."""
  def make(context):
    made = _config()(context)
    made["config"].data.update(dict(
        source="tfds", name="rs_multisource/synthetic_tiny",
        data_dir=context.data_dir, **data))
    return dict(made, data_dir=made["config"].data.data_dir)
  return make


def _dataset_config_not_built(context) -> dict:
  made = _dataset_config()(context)
  made["data_dir"] = made["config"].data.data_dir = os.path.join(
      context.folder, "tensorflow_datasets")
  return made


def _command_line(*args) -> Callable:
  def make(context):
    return dict(folder=context.folder, argv=["prog", *args])
  return make


def _lock_held_by_this_process(context, made) -> dict:
  """`made` with its workdir locked by this (live) test process until the
  case is over."""
  lock = context.cleanup.enter_context(workdir_lock.for_workdir(
      made["workdir"]))
  lock.acquire()
  return dict(made, pid=os.getpid())


def _locked_by_this_process(context) -> dict:
  return _lock_held_by_this_process(context, _config()(context))


def _unreadable_lock(context) -> dict:
  made = _config()(context)
  os.makedirs(made["workdir"])
  with open(os.path.join(made["workdir"], workdir_lock.LOCK_NAME), "w") as f:
    f.write("half a lo")
  return made


def _read_only_parent(context) -> dict:
  """A workdir inside a folder that cannot be written: mode 0o555, and for
  root, who ignores the mode, the immutable attribute; where the filesystem
  has no such attribute (e.g. overlayfs in a container), a folder under
  /sys, which not even root may create."""
  made = _config()(context)
  parent = os.path.join(context.folder, "read_only")
  os.mkdir(parent)
  os.chmod(parent, 0o555)
  if os.geteuid() == 0:
    try:
      subprocess.run(["chattr", "+i", parent], check=True,
                     capture_output=True)
    except (OSError, subprocess.CalledProcessError):
      return dict(made, workdir=f"/sys/rsjax-read-only-{os.getpid()}")
    context.cleanup.callback(subprocess.run, ["chattr", "-i", parent],
                             check=True)
  return dict(made, workdir=os.path.join(parent, "run"))


def _workdir_is_a_file(context) -> dict:
  made = _config()(context)
  with open(made["workdir"], "w") as f:
    f.write("notes")
  return made


def _remote_workdir(context) -> dict:
  made = _config()(context)
  return dict(made, workdir="gs://rsjax-no-such-bucket/run",
              cwd=context.folder)


def _launcher_config(context) -> dict:
  """A config file of the tiny run for launch.train, and a workdir that
  must not be created."""
  config = train_processes.config_file(pathlib.Path(context.folder), 2)
  return dict(folder=context.folder, config_file=str(config),
              workdir=os.path.join(context.folder, "run"))


def _launcher_locked(context) -> dict:
  return _lock_held_by_this_process(context, _launcher_config(context))


# ------------------------------------------------------------- runners --

def _find_sources(made):
  scene_lib.find_sources(made["scene"], SCENE_SOURCES)


def _read_whole_scene(made):
  paths = {name: os.path.join(made["scene"], f"{name}.tif")
           for name in SCENE_SOURCES}
  with scene_lib.SceneReader(paths) as reader:
    reader.read(reader.grid.full_window)


def _check_scene_units(made):
  """The units check of full-scene inference, with its default flags, on
  every file of the scene (the tiny pix2pix run reads no s2)."""
  geo_units.check_sources(
      scene_lib.find_sources(made["scene"], SCENE_SOURCES),
      s2_units=full_scene.s2_units_of_scale(geo_bands.S2_REFLECTANCE_PER_DN),
      s1_units="linear", options=full_scene.UNITS_OPTIONS)


def _read_aligned_on_own_grid(made):
  align.read_aligned(made["file"], align.ReferenceGrid.from_raster(
      made["file"]))


def _read_band(band):
  def run(made):
    with geo_io.open_raster(made["file"]) as dataset:
      geo_io.read_window(dataset, Window(0, 0, 8, 8), bands=[band])
  return run


def _read_scene_as(**reader_options):
  def run(made):
    paths = scene_lib.find_sources(made["scene"], SCENE_SOURCES)
    with scene_lib.SceneReader(paths, **reader_options) as reader:
      reader.read(Window(0, 0, 8, 8))
  return run


def _check_dataset(made):
  pipeline.check_dataset(made["data"], eval_split=made["eval_split"])


def _create_eval_iterator(made):
  mesh = jax.make_mesh((8,), ("data",))
  pipeline.create_iterator(made["data"], mesh, train=False,
                           split=made["eval_split"])


def _train(made):
  trainer.train_and_evaluate(made["config"], made["workdir"])


def _train_in(made):
  """`_train` from the case's folder (a relative or remote workdir)."""
  with contextlib.chdir(made["cwd"]):
    _train(made)


def _parse_flags(made) -> Outcome:
  """launch.user_errors' flag parsing in-process, on fresh flags."""
  stderr = std_io.StringIO()
  with contextlib.redirect_stderr(stderr):
    try:
      parse_config_flags(made["argv"])
    except SystemExit as exit_:
      return Outcome(exit_.code, stderr.getvalue())
  return Outcome(0, stderr.getvalue())


def _load_run(step=None):
  def run(made):
    trained.load_run(made["workdir"], step=step)
  return run


def _resume(made):
  trainer.train_and_evaluate(memory_config(steps=6), made["workdir"])


def _infer(**options):
  """full_scene.infer of the made workdir and scene into its output, with
  64-pixel windows overlapping by 16 unless `options` say otherwise."""
  options = dict(window=64, overlap=16, progress=False) | options

  def run(made):
    full_scene.infer(made["workdir"], made["scene"], made["output"],
                     **options)
  return run


def _launch_train(made, *flags) -> Outcome:
  """`python -m launch.train` on the case's config file and workdir."""
  result = train_processes.run(made["config_file"], made["workdir"], *flags,
                               timeout=300)
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  return Outcome(result.returncode, result.stderr)


# --------------------------------------------------------------- cases --

S1 = "{scene}/s1.tif"
RASTERS = [
    BadInput("s2 without a CRS", _scene_rewritten("s2", _without_crs),
             _find_sources, scene_lib.SceneError,
             ("{file}", "source 's2'", "no CRS")),
    BadInput("dem without a CRS", _scene_rewritten("dem", _without_crs),
             _find_sources, scene_lib.SceneError,
             ("{file}", "source 'dem'", "no CRS")),
    BadInput("s1 without a CRS, read directly", _scene_rewritten(
        "s1", _without_crs), _read_aligned_on_own_grid,
             geo_io.RasterError, ("{file}", "no CRS")),
    BadInput("lulc without a geotransform", _scene_rewritten(
        "lulc", _without_geotransform), _find_sources, scene_lib.SceneError,
             ("{file}", "source 'lulc'", "no geotransform")),
    BadInput("s2 with 3 bands", _scene_rewritten("s2", _first_bands(3)),
             _find_sources, scene_lib.SceneError,
             ("{file}", "has 3 band(s), expected 4")),
    BadInput("s1 with 1 band", _scene_rewritten("s1", _first_bands(1)),
             _find_sources, scene_lib.SceneError,
             ("{file}", "has 1 band(s), expected 2")),
    BadInput("lulc with 2 bands", _scene_rewritten("lulc", _band_repeated(2)),
             _find_sources, scene_lib.SceneError,
             ("{file}", "has 2 band(s), expected 1")),
    BadInput("dem with 3 bands (an RGB hillshade)", _scene_rewritten(
        "dem", _band_repeated(3)),
             _find_sources, scene_lib.SceneError,
             ("{file}", "has 3 band(s), expected 1")),
    BadInput("s1 moved 50 km away: no overlap", _scene_rewritten(
        "s1", _moved_far_away), _read_whole_scene, geo_io.RasterError,
             ("do not overlap", "{file}")),
    BadInput("dem moved 50 km away: no overlap", _scene_rewritten(
        "dem", _moved_far_away), _read_whole_scene, geo_io.RasterError,
             ("do not overlap", "{scene}/dem.tif")),
    BadInput("s2 as float32 reflectance read with the DN scale",
             _scene_rewritten("s2", _as_reflectance), _check_scene_units,
             geo_units.UnitsError,
             ("{file}: band 1 (B2)", "Sentinel-2 reflectance",
              "pass --s2_scale=1 to launch.infer")),
    BadInput("s1_units neither linear nor db", _scene_copy_made,
             _read_scene_as(s1_units="decibel"), ValueError,
             ("s1_units", "'decibel'")),
    BadInput("s1 VH band all NaN", _scene_with("s1", _nan_band(1)),
             _read_aligned_on_own_grid, geo_io.EmptyWindowError,
             ("{file}", "; band 2 holds no valid pixel")),
    *(BadInput(f"{name} all {value} (no valid pixel)", _scene_with(
        name, _fill(value)), _read_aligned_on_own_grid,
               geo_io.EmptyWindowError, ("{file}", "holds no valid pixel"))
      for name, value in (("s1", np.nan), ("s2", 0), ("dem", np.nan),
                          ("lulc", 255))),
    BadInput("s2 is a text file", _scene_file_bytes(
        "s2", lambda _: b"not a GeoTIFF\n"), _find_sources,
             scene_lib.SceneError, ("{file}", "cannot be read as a raster")),
    BadInput("s1 is an empty file", _scene_file_bytes("s1", lambda _: b""),
             _find_sources, scene_lib.SceneError,
             ("{file}", "source 's1'")),
    BadInput("s1 pixels truncated", _scene_file_bytes(
        "s1", lambda data: data[:len(data) // 2]), _read_whole_scene,
             geo_io.RasterError, ("{file}", "cannot be read")),
    BadInput("lulc pixels truncated", _scene_file_bytes(
        "lulc", lambda data: data[:len(data) // 2]), _read_whole_scene,
             geo_io.RasterError, ("{file}", "cannot be read")),
    BadInput("dem missing from the scene", _scene_without("dem"),
             _find_sources, scene_lib.SceneError,
             ("{scene}", "no file for source 'dem'", "'dem.tif'")),
    BadInput("two files match s1", _scene_plus("s1", "S1.TIF"),
             lambda made: scene_lib.find_sources(
                 made["scene"], ["s1"], patterns={"s1": "[sS]1.*"}),
             scene_lib.SceneError, ("{scene}", "2 files match source 's1'")),
    BadInput("an unknown source name", _shared_scene,
             lambda made: scene_lib.find_sources(made["scene"], ["s3"]),
             scene_lib.SceneError, ("unknown source(s) ['s3']",)),
    BadInput("a file list naming a missing file", _shared_scene,
             lambda made: scene_lib.find_sources(
                 [S1.format(**made), made["output"]], ["s1"]),
             scene_lib.SceneError, ("no such file(s)", "{output}")),
    BadInput("band 3 of a 2-band s1", _shared_scene, lambda made: _read_band(
        3)(dict(made, file=S1.format(**made))), geo_io.RasterError,
             ("s1.tif", "band(s) [3] requested", "bands 1..2")),
]

DATASETS = [
    BadInput("dataset not built (registered builder)", _not_built(
        "rs_multisource/synthetic"), _check_dataset,
             tfds_builder.DatasetNotBuilt,
             ("'rs_multisource/synthetic'", "{data_dir}")),
    BadInput("dataset not built (unknown builder)", _not_built(
        "no_such_builder/any"), _check_dataset, tfds_builder.DatasetNotBuilt,
             ("'no_such_builder/any'", "{data_dir}")),
    BadInput("training split smaller than a batch", _dataset(batch_size=32),
             _check_dataset, tfds_builder.TooFewExamples,
             ("split 'train'", "20 example(s)", "batch_size=32")),
    BadInput("test split as training split, too small", _dataset(
        split="test", batch_size=8), _check_dataset,
             tfds_builder.TooFewExamples,
             ("split 'test'", "4 example(s)", "batch_size=8")),
    BadInput("unknown training split", _dataset(split="training"),
             _check_dataset, tfds_builder.MissingSplit,
             ("no split 'training'", "['test', 'train', 'validation']")),
    BadInput("unknown eval split", _dataset(eval_split="val"),
             _check_dataset, tfds_builder.MissingSplit, ("no split 'val'",)),
    BadInput("unknown eval split, iterator", _dataset(eval_split="dev"),
             _create_eval_iterator, tfds_builder.MissingSplit,
             ("no split 'dev'",)),
    BadInput("training on a dataset that is not built",
             _dataset_config_not_built, _train, tfds_builder.DatasetNotBuilt,
             ("{data_dir}",)),
    BadInput("training with too few examples", _dataset_config(batch_size=24),
             _train, tfds_builder.TooFewExamples,
             ("split 'train'", "batch_size=24")),
    BadInput("training on an unknown split", _dataset_config(split="tran"),
             _train, tfds_builder.MissingSplit, ("no split 'tran'",)),
]

PIX2PIX = "--config=configs/pix2pix.py"
CONFIGS = [
    BadInput("unknown top-level key", _command_line(
        PIX2PIX, "--config.total_step=5"), _parse_flags, 1,
             ("unknown config key 'total_step'", "total_steps")),
    BadInput("unknown key in data", _command_line(
        PIX2PIX, "--config.data.tile_sise=64"), _parse_flags, 1,
             ("'data.tile_sise'", "data.tile_size")),
    BadInput("misspelt group", _command_line(
        PIX2PIX, "--config.modle.generator=unet"), _parse_flags, 1,
             ("'modle.generator'", "model.generator")),
    BadInput("a key under a plain value", _command_line(
        PIX2PIX, "--config.seed.value=1"), _parse_flags, 1,
             ("'seed.value'",)),
    BadInput("not a number", _command_line(
        PIX2PIX, "--config.total_steps=many"), _parse_flags, 1,
             ("--config.total_steps=many",)),
    BadInput("unknown variant", _command_line(
        "--config=configs/rs_spade.py:s2"), _parse_flags, 1,
             ("configs/rs_spade.py", "unknown variant 's2'", "s1+lulc+dem")),
    BadInput("unknown value of a variant key", _command_line(
        "--config=configs/cloud_removal.py:arch=unet"), _parse_flags, 1,
             ("configs/cloud_removal.py", "'arch=unet'", "drib-drib")),
    BadInput("total_steps 0", _config(total_steps=0), _train,
             trainer.ConfigError,
             ("config.total_steps", "got 0")),
    BadInput("log_every negative", _config(log_every=-1), _train, ValueError,
             ("config.log_every", "got -1")),
    BadInput("checkpoint_every 0", _config(checkpoint_every=0), _train,
             ValueError, ("config.checkpoint_every",)),
    BadInput("eval_every None", _config(eval_every=None), _train,
             ValueError, ("config.eval_every", "got None")),
    BadInput("unknown system", _config(system="pix2pixhd"), _train,
             ValueError, ("config.system", "'pix2pixhd'", "paired_gan")),
    BadInput("unknown generator", _config_changed(
        lambda config: config.model.update(generator="resnet9")), _train,
             ValueError, ("unknown generator 'resnet9'",)),
    BadInput("batch size not divisible by the devices", _config_changed(
        lambda config: config.data.update(batch_size=12)), _train,
             ValueError, ("batch_size=12", "8 devices")),
    BadInput("unknown input field", _config(inputs=("s1", "radar")), _train,
             (ValueError, KeyError), ("radar",)),
    BadInput("tile size not divisible by the U-Net's 32", _config_changed(
        lambda config: config.data.update(tile_size=48)), _train,
             ValueError, ("divisible by 32",)),
    BadInput("launch.train: unknown key", _launcher_config,
             lambda made: _launch_train(made, "--config.totl_steps=3"), 1,
             ("unknown config key 'totl_steps'", "total_steps")),
    BadInput("launch.train: total_steps 0", _launcher_config,
             lambda made: _launch_train(made, "--config.total_steps=0"), 1,
             ("config.total_steps must be a positive int, got 0",)),
]


CHECKPOINTS = [
    *(BadInput(f"load_run: latest step {damage}", _damaged((2, damage)),
               _load_run(), checkpoint.RestoreError,
               ("{workdir}", "step 2", "steps [1, 2]"))
      for damage in checkpoint_damage.DAMAGES),
    BadInput("load_run: step 1 asked for, truncated", _damaged(
        (1, "truncated_array_files")), _load_run(step=1),
             checkpoint.RestoreError, ("{workdir}", "step 1")),
    *(BadInput(f"resume: none restores ({first} / {second})", _damaged(
        (1, first), (2, second)), _resume, checkpoint.RestoreError,
               ("no checkpoint restores", "step 1", "step 2"))
      for first, second in (("truncated_array_files", "empty_step_folder"),
                            ("missing_metadata", "deleted_array_files"))),
    BadInput("load_run: a step that was never saved", _trained_copy_made,
             _load_run(step=7), ValueError,
             ("{workdir}", "step 7", "[1, 2]")),
    BadInput("load_run: no checkpoint", _trained_copy_without("checkpoints"),
             _load_run(), FileNotFoundError, ("{workdir}", "no checkpoint")),
    BadInput("load_run: no config.json", _trained_copy_without("config.json"),
             _load_run(), FileNotFoundError,
             ("{workdir}/config.json", "no saved config")),
    BadInput("load_run: no such workdir", lambda context: dict(
        folder=context.folder, workdir=os.path.join(context.folder, "nope")),
             _load_run(), FileNotFoundError, ("{workdir}",)),
]


WORKDIRS = [
    BadInput("locked by a live run (this process)", _locked_by_this_process,
             _train, workdir_lock.WorkdirLocked,
             ("{workdir}/LOCK", "pid {pid}", "--force_unlock")),
    BadInput("an unreadable lock file", _unreadable_lock, _train,
             workdir_lock.WorkdirLocked,
             ("{workdir}/LOCK", "unreadable lock file", "half a lo")),
    BadInput("inside a read-only folder", _read_only_parent, _train, OSError,
             ("{workdir}",)),
    BadInput("a file, not a folder", _workdir_is_a_file, _train, OSError,
             ("{workdir}",)),
    BadInput("remote path without credentials", _remote_workdir, _train_in,
             OSError, ("gs://rsjax-no-such-bucket/run", "cannot be reached",
                       "credentials")),
    BadInput("launch.train on a locked workdir", _launcher_locked,
             _launch_train, 1, ("{workdir}/LOCK", "pid {pid}")),
]


def _no_vv(context):
  return dict(_scene_with("s1", _nan_band(0))(context),
              workdir=context.trained_run)


INFERENCE = [
    BadInput("geographic CRS", _with_run(_shared_scene), _infer(
        crs="EPSG:4326"), grid_checks.GridError,
             ("--crs EPSG:4326", "geographic", "--crs EPSG:32633")),
    BadInput("polar stereographic CRS", _with_run(_shared_scene), _infer(
        crs="EPSG:3031"), grid_checks.GridError,
             ("--crs EPSG:3031", "scale factor", "--crs EPSG:32633")),
    BadInput("CRS in feet", _with_run(_shared_scene), _infer(
        crs="EPSG:2263"), grid_checks.GridError, ("--crs EPSG:2263", "foot")),
    BadInput("resolution 5x coarser", _dataset_run, _infer(resolution=50.0),
             grid_checks.GridError,
             ("--resolution 50 m", "10 m", "--allow_resolution_mismatch")),
    BadInput("resolution 4x finer", _dataset_run, _infer(resolution=2.5),
             grid_checks.GridError,
             ("--resolution 2.5 m", "--allow_resolution_mismatch")),
    BadInput("s1 VV band all NaN", _no_vv, _infer(), nodata_checks.NoDataError,
             ("{file}: band 1 (VV)",)),
    BadInput("inference: dem all NaN", _with_run(_scene_with(
        "dem", _fill(np.nan))), _infer(), nodata_checks.NoDataError,
             ("{file}: band 1 (elevation)",)),
    BadInput("lulc outside the classes", _with_run(_scene_with(
        "lulc", _fill(100))), _infer(), geo_units.UnitsError,
             ("{file}: band 1 (label)", "codes [100]", "class table")),
    BadInput("s1 in dB read as linear (the default --s1_units)", _with_run(
        _scene_with("s1", _to_db)), _infer(), geo_units.UnitsError,
             ("{file}: band 1 (VV)", "pass --s1_units=db to launch.infer")),
    BadInput("inputs that never meet: all-nodata output",
             _inputs_that_never_meet, _infer(), nodata_checks.NoDataError,
             ("{output}: not written", "do not meet")),
    BadInput("dem missing", _with_run(_scene_without("dem")), _infer(),
             scene_lib.SceneError, ("source 'dem'", "'dem.tif'")),
    BadInput("no such scene folder", lambda context: dict(
        _with_run(_shared_scene)(context),
        scene=os.path.join(context.folder, "no_scene")), _infer(),
             scene_lib.SceneError, ("no such file(s)", "no_scene")),
    BadInput("window not a multiple of 32", _with_run(_shared_scene),
             _infer(window=48, overlap=8), ValueError,
             ("--window 48", "32")),
    BadInput("overlap as large as the window", _with_run(_shared_scene),
             _infer(overlap=64), ValueError, ("--overlap",)),
    BadInput("output folder missing", lambda context: dict(
        _with_run(_shared_scene)(context), output=os.path.join(
            context.folder, "no_folder", "out.tif")), _infer(), ValueError,
             ("{output}", "does not exist")),
    BadInput("output is a folder", lambda context: dict(
        _with_run(_shared_scene)(context), output=context.folder),
             _infer(), ValueError, ("{output}", "is a folder")),
    BadInput("a run of another system", _with_run(_shared_scene),
             _infer(expect_system="cloud_removal"), ValueError,
             ("'paired_gan'", "'cloud_removal'")),
    BadInput("a workdir without checkpoints", lambda context: dict(
        _shared_scene(context), **_trained_copy_without("checkpoints")(
            context)), _infer(), FileNotFoundError,
             ("{workdir}", "no checkpoint")),
]

CASES = RASTERS + DATASETS + CONFIGS + CHECKPOINTS + WORKDIRS + INFERENCE


def _param(case):
  marks = ([pytest.mark.xfail(strict=True, reason=case.xfail)]
           if case.xfail else [])
  return pytest.param(case, id=case.name, marks=marks)


def test_the_corpus_is_large_and_names_are_unique():
  assert len(CASES) >= 60
  assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input_is_refused_naming_it_and_leaves_nothing(case, context):
  made = case.make(context)
  watched = (made[case.leaves_nothing_in], context.scene, context.trained_run)
  before = [_snapshot(folder) for folder in watched]
  if isinstance(case.expect, int):
    outcome = case.run(made)
    assert outcome.status == case.expect, outcome.message[-3000:]
    message = outcome.message
  else:
    with pytest.raises(case.expect) as raised:
      case.run(made)
    message = str(raised.value)
  for text in case.must_name:
    assert text.format(**made) in message, (text.format(**made), message)
  assert [_snapshot(folder) for folder in watched] == before
