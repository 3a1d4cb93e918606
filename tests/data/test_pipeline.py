"""rsjax.data.pipeline on an 8-device CPU mesh: sharding, resume, eval, errors.

The memory source exercises the random-access path without TensorFlow; the
real rs_multisource/synthetic_tiny dataset (built once per session into a tmp
data_dir, as ArrayRecord and as TFRecord) exercises both TFDS readers.
"""

import json
import os
import re
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from rsjax import mesh as mesh_lib
from rsjax.data import augment, grain_reader, pipeline, readers, tfds_builder
from rsjax.data import normalize as normalize_lib
from rsjax.data.memory_source import MemorySource

MEMORY = dict(source="memory", batch_size=16, tile_size=16,
              memory_examples=40, seed=3)
META = ("s2", "s1", "lulc", "dem", "valid", "scene_id", "tile_row",
        "tile_col", "transform")


def _mesh(axis_type=AxisType.Explicit):
  return jax.make_mesh((8, 1), ("data", "fsdp"), axis_types=(axis_type,) * 2)


def _take(it, n):
  out = [jax.tree.map(np.asarray, next(it)) for _ in range(n)]
  it.close()
  return out


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_global_sharded_batches(devices, axis_type):
  mesh = _mesh(axis_type)
  batch = next(iter(pipeline.create_iterator(MEMORY, mesh)))
  sharding = mesh_lib.batch_sharding(mesh)
  expected = {"s2": ((16, 16, 16, 4), np.float32),
              "s1": ((16, 16, 16, 2), np.float32),
              "lulc": ((16, 16, 16), np.uint8),
              "dem": ((16, 16, 16, 4), np.float32),
              "valid": ((16, 16, 16), np.uint8)}
  assert set(batch) == set(expected)
  for name, (shape, dtype) in expected.items():
    x = batch[name]
    assert isinstance(x, jax.Array) and x.shape == shape and x.dtype == dtype
    assert x.sharding.is_equivalent_to(sharding, x.ndim)
    assert len(x.addressable_shards) == 8
    assert x.addressable_shards[0].data.shape[0] == 2
  for name in ("s2", "s1", "dem"):
    assert -1 <= float(batch[name].min()) and float(batch[name].max()) <= 1


def test_resume_at_step_k_yields_batch_k(devices):
  mesh = _mesh()
  config = dict(MEMORY, fields=META)  # 2 steps per epoch: crosses epochs
  full = _take(pipeline.create_iterator(config, mesh), 7)
  resumed = _take(pipeline.create_iterator(config, mesh, start_step=5), 2)
  for a, b in zip(full[5:], resumed):
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)
  assert not np.array_equal(full[0]["s2"], full[2]["s2"])  # reshuffled
  other = _take(pipeline.create_iterator(dict(config, seed=4), mesh), 1)
  assert not np.array_equal(full[0]["s2"], other[0]["s2"])


def test_eval_covers_every_example_once(devices):
  config = dict(MEMORY, fields=("s2", "tile_col"), eval_batch_size=24)
  it_mesh = _mesh()
  it = pipeline.create_iterator(config, it_mesh, train=False)
  batches = list(it)
  assert it.num_batches == len(batches) == 2
  ids = np.concatenate([np.asarray(b["tile_col"])[np.asarray(b["mask"]) > 0]
                        for b in batches])
  assert sorted(ids.tolist()) == list(range(40))
  assert batches[-1]["mask"].sharding == mesh_lib.batch_sharding(it_mesh)


def test_readers_are_independent_of_process_count():
  source = MemorySource(37, tile_size=4, fields=("tile_col",))
  def local(p, n, step, train):
    r = readers.RandomAccessReader(
        source, ("tile_col",), global_batch=8, process_index=p,
        process_count=n, seed=1, shuffle=train, train=train)
    return r.read(step)
  for step in (0, 3, 9):
    one = local(0, 1, step, True)["tile_col"]
    two = np.concatenate([local(p, 2, step, True)["tile_col"] for p in (0, 1)])
    np.testing.assert_array_equal(one, two)
  seen = []
  for step in range(5):  # eval, 4 processes: padded, each example once
    for p in range(4):
      batch = local(p, 4, step, False)
      seen += batch["tile_col"][batch["mask"] > 0].tolist()
  assert sorted(seen) == list(range(37))


def test_config_errors(devices):
  mesh = _mesh()
  with pytest.raises(ValueError, match=r"config.batch_size=12 .* 8 devices"):
    pipeline.create_iterator(dict(MEMORY, batch_size=12), mesh)
  with pytest.raises(ValueError, match=r"config.eval_batch_size=4"):
    pipeline.create_iterator(dict(MEMORY, eval_batch_size=4), mesh,
                             train=False)
  with pytest.raises(KeyError, match="unknown key.*'batchsize'"):
    pipeline.create_iterator(dict(MEMORY, batchsize=8), mesh)
  with pytest.raises(ValueError, match="larger than the split"):
    pipeline.create_iterator(dict(MEMORY, memory_examples=8), mesh)
  with pytest.raises(ValueError, match=re.escape(
      "config.augment must be one of ['none', 'flips', 'dihedral'], got "
      "'rot45'.")):
    pipeline.create_iterator(dict(MEMORY, augment="rot45"), mesh)
  for train, step in ((True, -1), (False, 2)):
    with pytest.raises(ValueError, match=re.escape(
        "start_step must be 0 for evaluation and >= 0 for training, got "
        f"{step}.")):
      pipeline.create_iterator(MEMORY, mesh, train=train, start_step=step)


def test_a_batch_must_divide_over_the_processes(devices, monkeypatch):
  """Every process reads an equal share of the global batch."""
  monkeypatch.setattr(jax, "process_count", lambda: 3)
  with pytest.raises(ValueError, match=re.escape(
      "config.batch_size=16 is not divisible by the number of processes 3.")):
    pipeline.check_batch_size(16, _mesh())
  assert pipeline.check_batch_size(24, _mesh()) == 8


def test_defaults_read_the_synthetic_tiny_dataset_in_a_fixed_order():
  cfg = pipeline.default_config()
  assert (cfg.source, cfg.name, cfg.seed) == (
      "tfds", "rs_multisource/synthetic_tiny", 0)


def test_arrays_directory_serves_only_the_configured_fields(tmp_path):
  """A generated-arrays directory may hold more fields than a run asks for."""
  np.save(tmp_path / "s2.npy", np.zeros((8, 4, 4, 4), np.float32))
  np.save(tmp_path / "lulc.npy", np.ones((8, 4, 4), np.uint8))
  (tmp_path / "meta.json").write_text(json.dumps({"fields": ["s2", "lulc"]}))
  cfg = pipeline._resolve(dict(source="memory", train_arrays=str(tmp_path),
                               fields=("lulc",), batch_size=8))
  reader = pipeline.make_reader(cfg, train=True, global_batch=8)
  assert set(reader.read(0)) == {"lulc"}
  reader.close()
  cfg.fields = ("lulc", "s1")
  with pytest.raises(KeyError, match=r"config.data.fields \['s1'\] are not "
                     "in the arrays directory"):
    pipeline.make_reader(cfg, train=True, global_batch=8)


def test_train_rows_select_the_training_rows_of_an_arrays_directory(
    tmp_path):
  """`config.train_rows` (a .npy of row indices) is the training split: a
  training epoch reads exactly those rows of the arrays directory."""
  np.save(tmp_path / "lulc.npy",
          np.arange(8, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4),
                                                                np.uint8))
  (tmp_path / "meta.json").write_text(json.dumps({"fields": ["lulc"]}))
  np.save(tmp_path / "rows.npy", np.array([6, 1, 3, 4]))
  cfg = pipeline._resolve(dict(source="memory", train_arrays=str(tmp_path),
                               train_rows=str(tmp_path / "rows.npy"),
                               fields=("lulc",), batch_size=2))
  reader = pipeline.make_reader(cfg, train=True, global_batch=2)
  assert reader.num_examples == 4
  epoch = np.concatenate([reader.read(step)["lulc"][:, 0, 0]
                          for step in range(2)])
  reader.close()
  assert sorted(epoch.tolist()) == [1, 3, 4, 6]


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """rs_multisource/synthetic_tiny built as ArrayRecord and as TFRecord."""
  tfds = pipeline.import_tfds()
  from data_builders.rs_multisource import rs_multisource_dataset_builder as m
  del tfds
  dirs = {}
  for fmt in ("array_record", "tfrecord"):
    data_dir = tmp_path_factory.mktemp(f"tfds_{fmt}")
    m.Builder(config="synthetic_tiny", data_dir=str(data_dir),
              file_format=fmt).download_and_prepare()
    dirs[fmt] = str(data_dir)
  return dirs


def _tfds_config(data_dir, **kwargs):
  return dict(name="rs_multisource/synthetic_tiny", data_dir=data_dir,
              batch_size=8, fields=META, seed=1, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["array_record", "tfrecord"])
def test_tfds_resume_and_layout(devices, tiny_data_dir, fmt):
  mesh = _mesh()
  config = _tfds_config(tiny_data_dir[fmt])
  it = pipeline.create_iterator(config, mesh)
  expected_reader = {"array_record": grain_reader.GrainReader,
                     "tfrecord": readers.TFDataReader}[fmt]
  assert isinstance(it.reader, expected_reader)
  assert it.steps_per_epoch == 2  # 20 train tiles, batch 8
  full = _take(it, 5)
  assert full[0]["s2"].shape == (8, 64, 64, 4)
  assert full[0]["scene_id"].dtype == object
  resumed = _take(pipeline.create_iterator(config, mesh, start_step=3), 2)
  for a, b in zip(full[3:], resumed):
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_tfds_augmentation_keeps_real_sources_aligned(devices, tiny_data_dir):
  mesh = _mesh()
  config = _tfds_config(tiny_data_dir["array_record"])
  plain = _take(pipeline.create_iterator(dict(config, augment="none"), mesh,
                                         start_step=1), 1)[0]
  augmented = _take(pipeline.create_iterator(
      dict(config, augment="dihedral"), mesh, start_step=1), 1)[0]
  ops = augment.sample_ops(1, 1, 8)
  for name in ("s2", "s1", "lulc", "valid"):
    expected = np.asarray(augment.apply_ops(jax.numpy.asarray(plain[name]),
                                            ops))
    np.testing.assert_allclose(augmented[name], expected, atol=1e-6,
                               err_msg=name)
  moved = np.asarray(augment.apply_ops(jax.numpy.asarray(plain["dem"]), ops))
  np.testing.assert_allclose(augmented["dem"][..., [0, 1, 3]],
                             moved[..., [0, 1, 3]], atol=1e-6)
  np.testing.assert_array_equal(augmented["tile_row"], plain["tile_row"])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["array_record", "tfrecord"])
def test_tfds_eval_covers_split_once(devices, tiny_data_dir, fmt):
  config = _tfds_config(tiny_data_dir[fmt], eval_split="test")
  batches = list(pipeline.create_iterator(config, _mesh(), train=False))
  keys = []
  for b in batches:
    real = np.asarray(b["mask"]) > 0
    keys += list(zip(b["scene_id"][real], np.asarray(b["tile_row"])[real],
                     np.asarray(b["tile_col"])[real]))
  assert len(keys) == len(set(keys)) == 4
  assert len(batches) == 1 and float(np.asarray(batches[0]["mask"]).sum()) == 4


def test_batches_split_over_data_and_fsdp_axes(devices):
  mesh = mesh_lib.make_mesh((("data", -1), ("fsdp", 2)))
  batch = next(iter(pipeline.create_iterator(MEMORY, mesh)))
  assert batch["s2"].sharding == mesh_lib.batch_sharding(mesh)
  assert {s.data.shape[0] for s in batch["s2"].addressable_shards} == {2}


def test_training_batches_carry_the_aspect_of_the_augmented_terrain(
    devices, tmp_path):
  """The pipeline's augmented DEM (#19): for every dihedral op, the aspect
  channel of a training batch is the aspect of the batch's own (mirrored)
  elevation, computed independently with `rsjax.geo.terrain` (gdaldem's Horn
  formulas). Dropping the aspect correction anywhere between the config and
  `augment.augment_batch` leaves the source tile's aspect, off by up to 180
  degrees.

  Tolerance, per cell: the stored aspect comes from the unmirrored float32
  elevation, the reference from the mirrored one, whose Horn sums add the same
  6 terms per component in another order. Each float32 sum is within 5 eps of
  sum |terms| <= 8 zmax (eps = 2**-23), so the two gradients differ by at most
  2 * 5 eps * 8 zmax / (8 res) per component, and the angle by that over |g|
  radians; plus up to 4 float32 roundings of values < 360 degrees (the three
  reflections and the mod, eps * 360 / 2 each). sqrt(2) combines the two
  components. No cell is skipped; each gets its own bound through its |g|.
  """
  import json

  from rsjax.geo import terrain

  res, t, n = 10.0, 16, 8
  yy, xx = np.mgrid[:t, :t].astype(np.float64)
  rng = np.random.default_rng(19)
  tiles = []
  for k in range(n):
    z = (200 + 30 * np.sin(xx / 3.0 + k) + 20 * np.cos(yy / 4.0 - k)
         + (k - 3) * xx * yy / 5 + rng.normal(0, 2, (t, t))).astype(np.float32)
    tiles.append(np.stack([z, terrain.slope(z, res=res),
                           terrain.aspect(z, res=res),
                           terrain.hillshade(z, res=res)], -1))
  dem = np.stack(tiles).astype(np.float32)
  np.save(tmp_path / "dem.npy", dem)
  (tmp_path / "meta.json").write_text(json.dumps({"fields": ["dem"]}))
  config = dict(source="memory", train_arrays=str(tmp_path), fields=("dem",),
                batch_size=8, normalize=False, augment="dihedral", seed=7)
  batches = _take(pipeline.create_iterator(config, _mesh()), 3)
  eps = 2.0**-23
  zmax = float(np.abs(dem[..., 0]).max())
  seen = set()
  for step, batch in enumerate(batches):
    ops = np.asarray(augment.sample_ops(7, step, 8))
    seen.update(ops.tolist())
    out = batch["dem"]
    for i, op in enumerate(ops):
      elevation = out[i, ..., 0]
      # The elevation is one of the source tiles under op (checked exactly).
      assert any(np.array_equal(elevation, np.asarray(augment.apply_ops(
          dem[j:j + 1, ..., 0], np.array([op])))[0]) for j in range(n))
      expected = terrain.aspect(elevation, res=res)
      dz_dx, dz_dy = terrain.horn_gradient(elevation.astype(np.float64),
                                           res=res)
      grad = np.hypot(dz_dx, dz_dy)
      tol = np.degrees(2 * 5 * eps * 8 * zmax / (8 * res) * np.sqrt(2) / grad
                       ) + 4 * eps * 360 / 2
      diff = np.abs((out[i, ..., 2].astype(np.float64) - expected + 180)
                    % 360 - 180)
      assert np.all(diff <= tol), (
          f"step {step} example {i} op {op}: aspect off by up to "
          f"{diff.max():.3f} deg (tolerance {tol.max():.2e} at worst)")
  assert seen == set(range(8)), seen  # every dihedral op was checked


def _fake_tfds(monkeypatch, file_format, alternatives=(), *, enums=True):
  """A prepared dataset of 8 examples (s2, lulc) stored as `file_format` (and
  `alternatives`, as `tfds convert_format` adds; TFDS's FileFormat enums, or
  plain strings with `enums=False`), without files: the builder
  (its info and `as_dataset`) and `tfds.data_source` are stand-ins. Returns
  the list of data sources opened."""
  def fmt(name):
    return types.SimpleNamespace(value=name) if enums else name
  info = types.SimpleNamespace(
      file_format=fmt(file_format),
      alternative_file_formats=[fmt(f) for f in alternatives],
      splits={"train": types.SimpleNamespace(num_examples=8)},
      features={"s2": None, "lulc": None})
  source = MemorySource(8, tile_size=4, fields=("s2", "lulc"))

  def as_dataset(*, split, shuffle_files, read_config):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    del split, shuffle_files, read_config
    return tf.data.Dataset.from_tensor_slices(source.take(range(8)))

  builder = types.SimpleNamespace(info=info, as_dataset=as_dataset)
  monkeypatch.setattr(tfds_builder, "open_builder",
                      lambda name, data_dir: builder)
  opened = []

  def data_source(name, *, split, data_dir, builder_kwargs):
    opened.append((name, split, data_dir, builder_kwargs))
    return MemorySource(8, tile_size=4, fields=("s2", "lulc"))

  monkeypatch.setattr(tfds_builder.import_tfds(), "data_source", data_source)
  return opened


def _fake_config(**overrides):
  return pipeline._resolve({"name": "converted/default",
                            "fields": ("s2", "lulc"), "batch_size": 8,
                            **overrides})


def test_a_tfrecord_dataset_with_an_array_record_copy_is_read_randomly(
    monkeypatch):
  """`tfds convert_format` adds ArrayRecord files to a TFRecord dataset as
  `alternative_file_formats`; read_mode 'auto' then reads at random, with
  Grain, and 'random_access' with rsjax's reader."""
  opened = _fake_tfds(monkeypatch, "tfrecord", ["array_record"])
  config = _fake_config(read_mode="auto", data_dir="/datasets/tfds")
  reader = pipeline.make_reader(config, train=True, global_batch=8)
  assert isinstance(reader, grain_reader.GrainReader)
  assert opened == [("converted/default", "train", "/datasets/tfds",
                     {"file_format": "array_record"})]
  # config.read_workers reaches Grain's reader (whose worker processes
  # start only when batches are read).
  assert reader.num_workers == 0
  config.read_workers = 2
  reader = pipeline.make_reader(config, train=True, global_batch=8)
  assert reader.num_workers == 2
  config.read_mode = "random_access"
  reader = pipeline.make_reader(config, train=True, global_batch=8)
  assert isinstance(reader, readers.RandomAccessReader)
  # Training reads a seeded permutation of the 8 examples, evaluation reads
  # them in order.
  order = reader.indices(0)
  assert sorted(order.tolist()) == list(range(8))
  assert not np.array_equal(order, np.arange(8))
  reader.close()
  reader = pipeline.make_reader(config, train=False, split="train",
                                global_batch=8)
  np.testing.assert_array_equal(reader.indices(0), np.arange(8))
  reader.close()


def test_read_modes_need_their_file_formats_and_fields_must_exist(
    monkeypatch):
  """Each read mode names the files it needs and the format the dataset is
  stored in; a configured field the dataset lacks is named with the dataset's
  features."""
  _fake_tfds(monkeypatch, "array_record")
  with pytest.raises(ValueError, match=re.escape(
      "config.read_mode='tf_data' needs TFRecord files, but "
      "'converted/default' is stored as ")):
    pipeline.make_reader(_fake_config(read_mode="tf_data"), train=True,
                         global_batch=8)
  with pytest.raises(KeyError, match=re.escape(
      "config.fields: ['s1'] not in dataset 'converted/default' (features: "
      "['lulc', 's2']).")):
    pipeline.make_reader(_fake_config(fields=("s2", "s1")), train=True,
                         global_batch=8)
  _fake_tfds(monkeypatch, "tfrecord")
  with pytest.raises(ValueError, match=re.escape(
      "config.read_mode='grain' needs ArrayRecord files, but "
      "'converted/default' is stored as ")):
    pipeline.make_reader(_fake_config(read_mode="grain"), train=True,
                         global_batch=8)
  with pytest.raises(ValueError, match=re.escape(
      "config.read_mode='random_access' needs ArrayRecord files, but "
      "'converted/default' is stored as ") + r".*; rebuild with "
      + re.escape("`tfds build --file_format=array_record` or use read_mode "
                  "'tf_data'.")):
    pipeline.make_reader(_fake_config(read_mode="random_access"), train=True,
                         global_batch=8)
  with pytest.raises(tfds_builder.TooFewExamples,
                     match="split 'train' of dataset 'converted/default'"):
    pipeline.make_reader(_fake_config(batch_size=16), train=True,
                         global_batch=16)
  # A dataset in neither format cannot be read in 'auto' mode either.
  _fake_tfds(monkeypatch, "parquet")
  with pytest.raises(ValueError, match=re.escape(
      "needs TFRecord files, but 'converted/default' is stored as ")):
    pipeline.make_reader(_fake_config(read_mode="auto"), train=True,
                         global_batch=8)
  # Formats given as plain strings are recognized as well.
  _fake_tfds(monkeypatch, "tfrecord", enums=False)
  reader = pipeline.make_reader(_fake_config(read_mode="tf_data"), train=True,
                                global_batch=8)
  assert isinstance(reader, readers.TFDataReader)
  # Training shuffles the stored order (seeded), evaluation keeps it.
  stored = MemorySource(8, tile_size=4, fields=("s2", "lulc")).take(range(8))
  trained = next(reader.batches(0))["s2"]
  assert sorted(map(bytes, trained)) == sorted(map(bytes, stored["s2"]))
  assert not np.array_equal(trained, stored["s2"])
  evaluated = pipeline.make_reader(_fake_config(read_mode="tf_data"),
                                   train=False, split="train", global_batch=8)
  np.testing.assert_array_equal(next(evaluated.batches(0))["s2"], stored["s2"])
  _fake_tfds(monkeypatch, "array_record", enums=False)
  reader = pipeline.make_reader(_fake_config(read_mode="auto"), train=True,
                                global_batch=8)
  assert isinstance(reader, grain_reader.GrainReader)
  reader.close()


def test_an_iterator_left_open_does_not_keep_the_process_alive(tmp_path):
  """The prefetch threads are daemons: a program that stops reading (an error
  mid-training) exits although their queues are full and never drained."""
  script = tmp_path / "left_open.py"
  script.write_text(
      "import jax\n"
      "from rsjax.data import pipeline\n"
      "mesh = jax.make_mesh((1, 1), ('data', 'fsdp'))\n"
      "it = iter(pipeline.create_iterator(dict(source='memory', batch_size=2,"
      " tile_size=8, memory_examples=8), mesh))\n"
      "next(it)\n"
      "print('read one batch')\n")
  # The rsjax under test (a mutant's copy under `make mutants`), not another.
  root = os.path.dirname(os.path.dirname(pipeline.__file__))
  root = os.path.dirname(root)
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="",
             PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH",
                                                              "")]))
  done = subprocess.run([sys.executable, str(script)], cwd=os.getcwd(),
                        env=env, capture_output=True, text=True, timeout=60)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "read one batch" in done.stdout


def test_postprocess_uses_the_configured_augmentation_and_normalization():
  """Training batches are the raw batches under the ops of the configured
  mode ('flips': no transposes) and normalized with the configured ranges."""
  base = dict(MEMORY, fields=("s2", "lulc"), augment="none", normalize=False)
  mesh = _mesh()
  raw = _take(pipeline.create_iterator(base, mesh), 2)
  norm = {"s2": {"high": 0.3}}
  flipped = _take(pipeline.create_iterator(
      dict(base, augment="flips", normalize=True, normalization=norm), mesh),
      2)
  for step in range(2):
    ops = augment.sample_ops(MEMORY["seed"], step, MEMORY["batch_size"],
                             mode="flips")
    moved = {k: np.asarray(augment.apply_ops(raw[step][k], ops))
             for k in ("s2", "lulc")}
    want = normalize_lib.normalize_batch(moved, norm)
    np.testing.assert_array_equal(flipped[step]["lulc"], want["lulc"])
    np.testing.assert_allclose(flipped[step]["s2"], want["s2"], atol=1e-6)


def test_evaluation_reads_its_split_in_order_without_augmentation(devices):
  """An evaluation pass serves the split's examples in stored order and as
  stored, whatever the training settings (shuffle, dihedral augmentation):
  batch i holds examples 16 i ... 16 i + 15 (tile_col numbers a memory
  example), and its pixels equal an unshuffled, unaugmented training read of
  the same split."""
  config = dict(MEMORY, fields=("s2", "tile_col"), normalize=False,
                augment="dihedral", shuffle=True)
  mesh = _mesh()
  evaluated = _take(pipeline.create_iterator(config, mesh, train=False,
                                             split="train"), 2)
  plain = _take(pipeline.create_iterator(
      dict(config, shuffle=False, augment="none"), mesh), 2)
  for i in range(2):
    np.testing.assert_array_equal(evaluated[i]["tile_col"],
                                  np.arange(16 * i, 16 * i + 16))
    np.testing.assert_array_equal(evaluated[i]["s2"], plain[i]["s2"])


def test_training_batches_are_not_augmented_by_default(devices):
  """None of the papers states a geometric augmentation (rsjax/data/augment.py
  lists the sections), so a config that does not ask for one trains on the
  examples as stored: the default training batches, unshuffled, are the
  evaluation pass's (stored order, never augmented) pixel for pixel."""
  assert pipeline.default_config().augment == "none"
  config = dict(MEMORY, fields=("s2", "lulc", "dem"), normalize=False,
                shuffle=False)
  mesh = _mesh()
  trained = _take(pipeline.create_iterator(config, mesh), 2)
  stored = _take(pipeline.create_iterator(config, mesh, train=False,
                                          split="train"), 2)
  for i in range(2):
    for name in ("s2", "lulc", "dem"):
      np.testing.assert_array_equal(trained[i][name], stored[i][name],
                                    err_msg=name)


def test_memory_splits_are_different_examples(devices):
  """The memory source's evaluation split is not its training split: the
  same tile positions hold other pixels, so evaluating on 'validation'
  never scores the training examples."""
  config = dict(MEMORY, fields=("s2",), normalize=False)
  mesh = _mesh()
  train_split = _take(pipeline.create_iterator(config, mesh, train=False,
                                               split="train"), 1)[0]["s2"]
  validation = _take(pipeline.create_iterator(config, mesh, train=False),
                     1)[0]["s2"]
  assert train_split.shape == validation.shape
  per_example = np.abs(train_split - validation).reshape(16, -1).max(axis=1)
  assert np.all(per_example > 0)


def test_training_iterators_shuffle_count_steps_and_use_batch_size(devices):
  """Training reads a seeded permutation (not stored order), in batches of
  `batch_size` even when `eval_batch_size` differs; `step` is the step of
  the next batch; `num_examples` is the split's size."""
  config = dict(MEMORY, fields=("tile_col",), eval_batch_size=24)
  it = pipeline.create_iterator(config, _mesh(), start_step=3)
  assert (it.step, it.num_examples, it.global_batch) == (3, 40, 16)
  ids = [np.asarray(next(it)["tile_col"]) for _ in range(2)]
  assert it.step == 5
  it.close()
  for batch in ids:
    assert batch.shape == (16,) and len(set(batch.tolist())) == 16
    assert not np.array_equal(np.sort(batch), batch)  # not in stored order


@pytest.mark.parametrize("bad", [0, -8, 8.0, "8", None])
def test_a_batch_size_must_be_a_positive_int(devices, bad):
  with pytest.raises(ValueError, match=re.escape(
      f"config.eval_batch_size must be a positive int, got {bad!r}.")):
    pipeline.check_batch_size(bad, _mesh(), "eval_batch_size")


def test_the_local_batch_is_an_int_and_may_be_one(devices, monkeypatch):
  one_device = jax.make_mesh((1, 1), ("data", "fsdp"),
                             devices=jax.devices()[:1])
  assert pipeline.check_batch_size(1, one_device) == 1
  assert pipeline.check_batch_size(np.int64(8), _mesh()) == 8
  monkeypatch.setattr(jax, "process_count", lambda: 3)
  local = pipeline.check_batch_size(24, _mesh())
  assert local == 8 and isinstance(local, int)


def test_source_and_read_mode_errors_name_the_key_and_the_choices():
  with pytest.raises(ValueError, match=re.escape(
      "config.source must be one of ['tfds', 'memory'], got 's3'.")):
    pipeline._resolve(dict(source="s3"))
  with pytest.raises(ValueError, match=re.escape(
      "config.read_mode must be one of ['auto', 'random_access', 'tf_data', "
      "'grain'], got 'mmap'.")):
    pipeline._resolve(dict(read_mode="mmap"))


def test_prefetch_thread_forwards_errors_ends_once_and_closes():
  """The prefetch thread is a daemon; an error raised while reading reaches
  the consumer as itself; an exhausted iterator stays exhausted; `close`
  returns after the thread has ended."""
  boom = ValueError("boom")

  def failing():
    yield 1
    raise boom

  background = pipeline._Background(failing(), 2)
  assert background._thread.daemon
  assert next(background) == 1
  with pytest.raises(ValueError) as raised:
    next(background)
  assert raised.value is boom
  background.close()

  finite = pipeline._Background(iter([1, 2]), 1)
  assert list(finite) == [1, 2]
  for _ in range(2):
    with pytest.raises(StopIteration):
      next(finite)
  finite.close()

  endless = pipeline._Background(iter(range(10**9)), 1)
  assert next(endless) == 0
  endless.close()
  assert not endless._thread.is_alive()
