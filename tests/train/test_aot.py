"""Ahead-of-time compiles of the trainer's steps (`rsjax.train.aot`,
`launch.compile`; issue 22).

The TPU compiles use libtpu (the `tpu` extra, installed with the tests) and
compile-only devices of `jax.experimental.topologies`: the real TPU compiler
runs on this CPU host. They take one to three minutes each on 2 cores, so
only demo configs on a 4-chip v5e are compiled here; the paper-size table is
`benchmarks/tpu_compile_table.py`'s (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gcs_emulator
import tiny_configs
import train_processes
from rsjax import mesh as mesh_lib
from rsjax.data import pipeline
from rsjax.systems import inputs
from rsjax.train import aot
from rsjax.train import tpu_chips
from rsjax.train import tpu_profile

TOPOLOGY = "v5e:2x2"


# -- abstract batches ----------------------------------------------------------

@pytest.mark.parametrize("train", [True, False])
def test_abstract_batch_is_what_the_iterator_gives(devices, train):
  config = tiny_configs.memory_config()
  mesh = mesh_lib.make_mesh((("data", 4), ("fsdp", 2)))
  iterator = pipeline.create_iterator(config.data, mesh, train=train)
  try:
    batch = next(iterator)
  finally:
    iterator.close()
  abstract = pipeline.abstract_batch(config.data, mesh, train=train)
  real = {name: value for name, value in batch.items()
          if isinstance(value, jax.Array)}
  assert sorted(abstract) == sorted(real)
  assert ("mask" in abstract) == (not train)
  for name, value in real.items():
    assert abstract[name].shape == value.shape, name
    assert abstract[name].dtype == value.dtype, name
    assert abstract[name].sharding == value.sharding, name


def test_abstract_batch_refuses_a_batch_the_mesh_cannot_split(devices):
  config = tiny_configs.memory_config()
  config.data.batch_size = 12
  with pytest.raises(ValueError, match=r"config.batch_size=12 .* 8 devices"):
    pipeline.abstract_batch(config.data, mesh_lib.make_mesh(config.mesh))


# -- compiling on this host's devices -------------------------------------------

@pytest.fixture(scope="module")
def cpu_reports(devices):
  config = tiny_configs.memory_config()
  mesh = mesh_lib.make_mesh(config.mesh)
  return config, mesh, aot.compile_steps(config, mesh)


def test_compile_steps_reports_both_steps_of_a_data_parallel_run(cpu_reports):
  config, mesh, reports = cpu_reports
  assert sorted(reports) == ["eval", "train"]
  train, evaluate = reports["train"], reports["eval"]
  assert train.batch == config.data.batch_size
  assert evaluate.batch == config.data.eval_batch_size
  assert train.flops > evaluate.flops > 0
  # A data mesh all-reduces gradients and statistics, nothing else; the eval
  # step all-reduces its sums.
  assert set(train.collectives) == {"all-reduce"}
  assert set(evaluate.collectives) <= {"all-reduce"}
  # XLA's CPU peak counts the arguments only; the temporaries come on top.
  assert train.peak_bytes == train.sum_of_parts_bytes > (
      train.compiler_peak_bytes)
  # The state is replicated: each device holds all of it, and it is part of
  # the arguments; the donated state comes back in place.
  assert train.argument_bytes >= train.state_bytes > 0
  assert train.alias_bytes > 0
  # No chip figures for CPU devices: no capacity, no bound, no verdict.
  assert train.chip is None and train.fits is None
  assert train.seconds_roofline is None
  aot.check_fits(train, aot.mesh_shape(mesh))  # no figures: nothing to refuse


def test_report_state_bytes_are_the_parameters_and_optimizer_state(cpu_reports):
  config, mesh, reports = cpu_reports
  from rsjax.systems import base  # pylint: disable=g-import-not-at-top
  system = base.get_system(config)
  batch = pipeline.abstract_batch(config.data, mesh)
  state = jax.eval_shape(system.init, jax.random.PRNGKey(0), batch)
  nbytes = sum(math.prod(leaf.shape) * jnp.dtype(leaf.dtype).itemsize
               for leaf in jax.tree.leaves(state))
  assert reports["train"].state_bytes == nbytes


# -- figures, verdicts and messages --------------------------------------------

class _FakeDevice:
  def __init__(self, kind, coords):
    self.device_kind, self.coords, self.id = kind, coords, 0


def test_chip_figures_are_shared_by_the_cores_of_a_chip():
  v5e = [_FakeDevice("TPU v5 lite", [x, y, 0]) for x in (0, 1) for y in (0, 1)]
  assert tpu_chips.per_device(v5e) == tpu_chips.CHIPS["TPU v5 lite"]
  v4 = [_FakeDevice("TPU v4", [x, 0, 0]) for x in (0, 1) for _ in (0, 1)]
  half = tpu_chips.per_device(v4)
  assert half.peak_flops == 275e12 / 2
  assert half.hbm_bytes == 16 * 2**30
  with pytest.raises(KeyError, match="'TPU v9'"):
    tpu_chips.per_device([_FakeDevice("TPU v9", [0, 0, 0])])


def _report(**changes):
  fields = dict(name="train", batch=16, flops=3e12, bytes_accessed=2e9,
                argument_bytes=6 * 2**30, output_bytes=6 * 2**30,
                alias_bytes=6 * 2**30, temp_bytes=14 * 2**30,
                code_bytes=2**30, compiler_peak_bytes=0,
                state_bytes=6 * 2**30, collectives={},
                chip=tpu_chips.Chip("chip", 1e14, 16 * 2**30, 1e12))
  fields.update(changes)
  return aot.StepReport(**fields)


def test_roofline_is_the_slower_of_compute_and_memory():
  assert _report().seconds_roofline == pytest.approx(3e12 / 1e14)
  assert _report(bytes_accessed=5e10).seconds_roofline == \
      pytest.approx(5e10 / 1e12)


def test_a_step_over_the_chip_says_by_how_much_and_what_fits():
  report = _report()   # no compiler figure: 6 + 0 + 14 + 1 = 21 GiB of 16
  assert report.peak_bytes == 21 * 2**30 and report.fits is False
  with pytest.raises(aot.StepDoesNotFit) as raised:
    aot.check_fits(report, {"data": 4, "fsdp": 1})
  message = str(raised.value)
  assert "21.00 GiB per device, 5.00 GiB more than the 16.00 GiB" in message
  # 14 GiB for 4 images a device: 3.5 per image; 16 - 7 fixed leaves 9 GiB,
  # 2 images a device, 8 in all.
  assert "global batch of at most 8 (2 per device" in message
  # fsdp=2 halves the 6 GiB state: 18 GiB, still over; fsdp=4: 16.5, over;
  # fsdp=8 would fit but needs 8 devices.
  assert "fsdp=" not in message
  over = _report(temp_bytes=12 * 2**30)   # 19 GiB; fsdp=2 -> 16 GiB
  with pytest.raises(aot.StepDoesNotFit,
                     match=r"at most 12 \(3 per device.* or a mesh with fsdp=2 "):
    aot.check_fits(over, {"data": 4, "fsdp": 1})
  aot.check_fits(_report(temp_bytes=8 * 2**30), {"data": 4})  # 15 GiB fits


# -- the TPU compiler -------------------------------------------------------------

def test_peak_is_the_tpu_compiler_s_own_figure_where_it_is_larger():
  """A data-parallel SGD step of one dense layer for the v5e:2x2: the
  compiler's buffer assignment holds the gradient and its all-reduce besides
  the arguments, which its temporaries do not count (issue 24: adding up
  the parts understated the peak)."""
  mesh = aot.tpu_mesh(TOPOLOGY, (("data", 4),))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  x = jax.ShapeDtypeStruct((64, 1024), jnp.float32, sharding=rows)
  w = jax.ShapeDtypeStruct((1024, 1024), jnp.float32,
                           sharding=mesh_lib.replicated(mesh))

  def sgd(w, x):
    return w - 0.1 * jax.grad(lambda w: jnp.tanh(x @ w).sum())(w)

  compiled = jax.jit(sgd, donate_argnums=0).lower(w, x).compile()
  report = aot.step_report("train", compiled, 64, 4 * 2**20,
                           tpu_chips.per_device(list(mesh.devices.flat)))
  peak = compiled.memory_analysis().peak_memory_in_bytes
  assert report.peak_bytes == report.compiler_peak_bytes == peak
  # The weights, their gradient and its all-reduced copy: 3 x 4 MiB.
  assert peak >= 3 * 4 * 2**20 > report.sum_of_parts_bytes
  assert report.to_json({"data": 4}, TOPOLOGY)["bytes_per_chip"]["peak"] == peak


def test_layer_of_an_op_name():
  assert tpu_profile.layer_of(
      "jit(train_step)/transpose(jvp(Generator))/up_0/spade/conv/"
      "conv_general_dilated") == ("Generator/up_0/spade/conv", True)
  assert tpu_profile.layer_of(
      "jit(f)/jvp(Net)/jit(relu)/max") == ("Net", False)
  assert tpu_profile.layer_of(
      "jit(train_step)/jit(_ssim)/reduce_sum") == ("train_step/_ssim", False)
  assert tpu_profile.layer_of(
      "jit(train_step)/transpose(jvp())/add_any") == ("train_step/add_any",
                                                      True)
  assert tpu_profile.layer_of("batch['s1']") == ("batch['s1']", False)


def test_profile_adds_up_the_compiler_s_estimates_by_layer_and_kind():
  """Two convolutions of a Flax module, forward and backward, for a v5e:
  every layer's forward and backward take estimated time, the shares of the
  kinds add up to one, the convolutions are a cost centre, and the
  estimate is the cycles at the chip's clock (issue 24, item 2)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Conv(32, (3, 3), name="conv_a")(x))
      return (nn.Conv(8, (3, 3), name="conv_b")(x) ** 2).mean()

  net = Net()
  mesh = aot.tpu_mesh(TOPOLOGY, (("data", 4),))
  replicated = mesh_lib.replicated(mesh)
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  params = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
      jax.eval_shape(net.init, jax.random.PRNGKey(0),
                     jnp.zeros((1, 64, 64, 3))))
  x = jax.ShapeDtypeStruct((8, 64, 64, 3), jnp.float32, sharding=rows)
  compiled = jax.jit(jax.grad(net.apply)).lower(params, x).compile()
  chip = tpu_chips.per_device(list(mesh.devices.flat))
  report = aot.step_report("train", compiled, 8, 0, chip)
  found = report.profile
  assert found is not None
  assert found.clock_hz == pytest.approx(197e12 / (4 * 128 * 128 * 2))
  assert found.step_seconds_estimate == pytest.approx(
      found.cycles / found.clock_hz)
  assert found.efficiency == pytest.approx(
      report.flops / chip.peak_flops / found.step_seconds_estimate)
  assert 0 < found.efficiency < 1
  layers = {c.name: c for c in found.by_layer}
  for name in ("Net/conv_a", "Net/conv_b"):
    assert layers[name].forward_seconds > 0 < layers[name].backward_seconds
  assert sum(c.share for c in found.by_layer) == pytest.approx(1)
  assert sum(c.share for c in found.by_kind) == pytest.approx(1)
  assert "convolution" in {c.name for c in found.by_kind}
  as_json = report.to_json({"data": 4}, TOPOLOGY)
  assert as_json["step_seconds_estimate"] == found.step_seconds_estimate
  assert as_json["profile"]["by_layer"][0]["name"] == found.by_layer[0].name
  assert "| Net/conv_" in tpu_profile.summary(found)
  # Control flow in the entry: its bodies' cycles are not added up, so no
  # profile rather than a wrong one.
  while_step = jax.jit(lambda x: jax.lax.fori_loop(
      0, 3, lambda _, y: jnp.tanh(y @ y), x)).lower(
          jax.ShapeDtypeStruct((256, 256), jnp.float32,
                               sharding=replicated)).compile()
  assert "while(" in while_step.as_text()
  assert aot.step_report("eval", while_step, 1, 0, chip).profile is None
  # No estimates in a CPU compile: no profile.
  assert tpu_profile.profile("ENTRY %main () -> f32[] {\n}", chip, 1, 1) is None


def test_the_compiler_counts_the_flops_of_one_device():
  """A product whose rows are split over the 4 chips: the cost analysis
  counts one chip's share, 2 M/4 N K, so a step's FLOPs are that times the
  device count and its MFU compares it with one chip's peak (issue 24:
  benchmarks/train_step.py divided by the device count a second time)."""
  mesh = aot.tpu_mesh(TOPOLOGY, (("data", 4),))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  x = jax.ShapeDtypeStruct((64, 512), jnp.float32, sharding=rows)
  w = jax.ShapeDtypeStruct((512, 256), jnp.float32,
                           sharding=mesh_lib.replicated(mesh))
  compiled = jax.jit(lambda x, w: x @ w).lower(x, w).compile()
  report = aot.step_report("eval", compiled, 64, 0, None)
  assert report.flops == 2 * (64 // 4) * 512 * 256
  assert report.to_json({"data": 4}, TOPOLOGY)["flops_per_step"] == (
      2 * 64 * 512 * 256)


def test_one_hot_is_jax_one_hot_and_compiles_for_tpu_under_a_conv():
  """The pattern that aborted the TPU compiler's space-to-batch pass
  (benchmarks/tpu_space_to_batch_repro.py) compiles with rsjax's one-hot,
  and that one-hot equals jax.nn.one_hot (codes outside the classes: 0)."""
  codes = np.array([[0, 3, 8], [9, -1, 2]])
  np.testing.assert_array_equal(inputs.one_hot(jnp.asarray(codes), 9),
                                jax.nn.one_hot(codes, 9))
  assert inputs.one_hot(jnp.asarray(codes), 9).dtype == jnp.float32
  mesh = aot.tpu_mesh(TOPOLOGY, (("data", -1),))
  labels = jax.ShapeDtypeStruct((4, 256, 256), jnp.uint8,
                                sharding=mesh_lib.batch_sharding(mesh))
  kernel = jax.ShapeDtypeStruct((3, 3, 9, 8), jnp.float32,
                                sharding=mesh_lib.replicated(mesh))

  def weight_gradient(kernel, labels):
    def loss(kernel):
      y = jax.lax.conv_general_dilated(
          inputs.one_hot(labels, 9), kernel, (1, 1), "SAME",
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
      return jnp.mean(jax.nn.relu(y) ** 2)
    return jax.grad(loss)(kernel)

  compiled = jax.jit(weight_gradient,
                     out_shardings=mesh_lib.replicated(mesh)
                     ).lower(kernel, labels).compile()
  assert compiled.cost_analysis()


def test_tpu_mesh_names_the_generations_it_knows():
  with pytest.raises(ValueError, match="v4, v5e, v5p, v6e"):
    aot.tpu_mesh("v5litepod-16", (("data", -1),))


def _compile(folder, config, *flags):
  out = folder / "report.json"
  result = train_processes.run_launcher(
      "launch.compile", f"--config={config}", f"--topology={TOPOLOGY}",
      f"--json={out}", *flags, timeout=1200)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(out.read_text()), result.stdout


@pytest.fixture(scope="module")
def pix2pix_data_mesh():
  """pix2pix's demo compiled for the v5e:2x2 as configured: a pure data
  mesh of 4 chips, train and eval (JSON report, printed table). The JSON
  goes to a `gs://` URI of an emulated bucket (`gcs_emulator`), read back
  over the bucket's own API."""
  with gcs_emulator.running() as (url, bucket):
    result = gcs_emulator.run(
        url, train_processes.ROOT, "-m", "launch.compile",
        "--config=configs/pix2pix.py:demo", f"--topology={TOPOLOGY}",
        f"--json=gs://{gcs_emulator.BUCKET}/compile/pix2pix.json", "--profile",
        timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert bucket.names("compile") == {"pix2pix.json"}
    assert not os.path.exists(os.path.join(train_processes.ROOT, "gs:"))
    return json.loads(bucket.read("compile/pix2pix.json")), result.stdout


def _check_data_parallel_step(step):
  assert step["flops_per_device"] > 0
  assert step["fits"] is True
  chip = step["bytes_per_chip"]
  assert chip["capacity"] == 16e9
  assert 0 < chip["peak"] <= chip["capacity"]
  # A pure data mesh: only all-reduces (gradients, statistics, sums).
  assert set(step["collectives"]) <= {"all-reduce"}
  assert step["step_seconds_roofline"] >= step["flops_per_device"] / 197e12


@pytest.mark.slow
def test_launch_compile_pix2pix_demo_for_a_v5e(pix2pix_data_mesh):
  report, printed = pix2pix_data_mesh
  assert report["topology"] == TOPOLOGY
  assert report["mesh"] == {"data": 4, "fsdp": 1}
  assert sorted(report["steps"]) == ["eval", "train"]
  for step in report["steps"].values():
    _check_data_parallel_step(step)
    assert step["flops_per_step"] == 4 * step["flops_per_device"]
  assert set(report["steps"]["train"]["collectives"]) == {"all-reduce"}
  assert "| train |" in printed and "TPU v5e" in printed
  # --profile: the compiler's estimate and the U-Net's layers (issue 24).
  train = report["steps"]["train"]
  profile = train["profile"]
  assert train["step_seconds_estimate"] == profile["step_seconds_estimate"]
  assert profile["step_seconds_estimate"] >= profile["flop_seconds"] > 0
  assert 0 < profile["efficiency"] < 1
  layers = {c["name"].split("/")[0] for c in profile["by_layer"]}
  assert {"UNetGenerator", "PatchGAN"} <= layers, layers
  assert "train step: compiler estimate" in printed
  assert "| top 12 layers |" in printed


@pytest.mark.slow
def test_launch_compile_rs_spade_demo_with_one_image_per_chip(tmp_path):
  """The demo's batch of 4 on 4 chips: one image per chip, where the
  default TPU compiler aborted on the land-cover embedding's gradient
  (issue 22, item 0). The train step only: it takes minutes."""
  report, _ = _compile(tmp_path, "configs/rs_spade.py:demo", "--steps=train",
                       f"--dump_hlo={tmp_path / 'hlo'}")
  step = report["steps"]["train"]
  assert step["batch"] == 4
  _check_data_parallel_step(step)
  assert set(step["collectives"]) == {"all-reduce"}
  # Compiled for TPU chips, the modulation is fused (issue 24): no embedding
  # convolution of its own.
  hlo = (tmp_path / "hlo" / "train.hlo.txt").read_text()
  assert "/norm_0/fuse/" in hlo and "/embed_lulc/" not in hlo


@pytest.mark.slow
def test_bfloat16_train_step_all_reduces_float32_gradients(tmp_path):
  """Issue 24, item 4: pix2pix's demo in bfloat16 on the v5e:2x2 data mesh
  all-reduces its gradients in float32 only (before, 31 of its all-reduced
  arrays were bfloat16), at least 4 bytes per parameter: the state is the
  parameters and Adam's two moments, so a third of its bytes."""
  report, _ = _compile(tmp_path, "configs/pix2pix.py:demo", "--steps=train",
                       "--config.dtype=bfloat16")
  step = report["steps"]["train"]
  reduced = step["collectives"]["all-reduce"]["bytes_by_dtype"]
  floats = {dtype for dtype in reduced if dtype.startswith(("f", "bf"))}
  assert floats == {"f32"}, reduced      # (and 64 bytes of u32 RNG state)
  assert reduced["f32"] >= step["bytes_per_chip"]["state"] / 3


@pytest.mark.slow
def test_launch_compile_fsdp_shards_the_state(tmp_path, pix2pix_data_mesh):
  """pix2pix's demo state on an fsdp mesh of the 4 v5e chips, every array of
  at least 1024 elements sharded: each chip holds at most 0.6 of the state a
  pure data mesh puts on it, also by the compiler's own argument bytes
  (arguments less the batch, which both meshes split 4 ways). Not 1/fsdp by
  the compiler's bytes: at fsdp=2 they were 62 % of the data mesh's, most
  likely because the TPU lays arrays out in tiles of 128 lanes, which a
  demo-width kernel's shard fills no less than the whole kernel does."""
  fsdp, _ = _compile(tmp_path, "configs/pix2pix.py:demo",
                     "--mesh=data=1,fsdp=4", "--steps=train",
                     "--config.fsdp_min_size=1024")
  assert fsdp["mesh"] == {"data": 1, "fsdp": 4}
  data_bytes = pix2pix_data_mesh[0]["steps"]["train"]["bytes_per_chip"]
  fsdp_bytes = fsdp["steps"]["train"]["bytes_per_chip"]
  assert fsdp_bytes["state"] <= 0.6 * data_bytes["state"]
  batch = data_bytes["argument"] - data_bytes["state"]
  assert fsdp_bytes["argument"] - batch <= 0.6 * (data_bytes["argument"]
                                                   - batch)
  assert "all-gather" in fsdp["steps"]["train"]["collectives"]
