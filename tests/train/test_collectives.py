"""The sharded train step's cross-device traffic is gradients and statistics.

Compiles (never runs) the tiny pix2pix step on the 8 simulated devices with
the trainer's shardings and scans its HLO: data parallelism must not
all-gather the batch or the parameters; the only collectives are all-reduces
of gradients (parameter-shaped) and of small BatchNorm statistics / metrics.
"""

from __future__ import annotations

import math

import jax
import pytest

import tiny_configs
from rsjax import mesh as mesh_lib
from rsjax.data import pipeline
from rsjax.systems import base

STATS_BUDGET = 64 * 1024   # bytes of all-reduced non-gradient values (BN, metrics)


@pytest.fixture(scope="module")
def sharded_step(devices):
  config = tiny_configs.memory_config()
  mesh = mesh_lib.make_mesh(config.mesh)
  system = base.get_system(config)
  iterator = pipeline.create_iterator(config.data, mesh, train=True)
  try:
    batch = next(iterator)
  finally:
    iterator.close()
  abstract = jax.eval_shape(system.init, jax.random.PRNGKey(0), batch)
  shardings = mesh_lib.state_shardings(abstract, mesh)
  state = jax.tree.map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                  sharding=sharding),
      abstract, shardings)
  compiled = jax.jit(system.train_step, donate_argnums=0,
                     out_shardings=(shardings, mesh_lib.replicated(mesh))
                     ).lower(state, batch).compile()
  return compiled.as_text(), abstract.params, batch


def test_no_all_gather_or_other_non_reduce_collectives(sharded_step):
  hlo, _, _ = sharded_step
  ops = {c.op for c in mesh_lib.collectives(hlo)}
  assert ops == {"all-reduce"}, ops


def test_all_reduces_are_gradients_and_small_statistics(sharded_step):
  hlo, params, _ = sharded_step
  param_shapes = {tuple(sorted(p.shape)) for p in jax.tree.leaves(params)}
  nbytes = lambda tree: 4 * sum(math.prod(p.shape)  # noqa: E731
                                for p in jax.tree.leaves(tree))
  param_bytes = nbytes(params)
  gradient_bytes = other_bytes = 0
  for collective in mesh_lib.collectives(hlo):
    for dtype, dims in collective.shapes:
      size = mesh_lib.Collective(collective.op, ((dtype, dims),)).bytes
      if len(dims) > 1:
        # Anything multi-dimensional must be a parameter's gradient, never a
        # slice of the batch.
        assert tuple(sorted(dims)) in param_shapes, (dims, collective.op)
        gradient_bytes += size
      else:
        other_bytes += size
  # G's gradient once; D's once per D call of the D step (XLA all-reduces
  # the real and the fake call's partial gradients before adding them, so
  # paired_gan's two D calls cost two all-reduces of D's gradient).
  assert 0 < gradient_bytes <= (nbytes(params["generator"])
                                + 2 * nbytes(params["discriminator"]))
  assert other_bytes <= param_bytes + STATS_BUDGET


def test_collectives_parser_reads_tuples_with_index_comments():
  hlo = ("  %all-reduce.1 = (f32[4]{0}, f32[4,4,19,4]{3,2,1,0}, /*index=2*/"
         "bf16[2,3]{1,0}) all-reduce(%a, %b, %c), replica_groups={{0,1}}\n"
         "  %ag = f32[16,8]{1,0} all-gather-start(%x), dimensions={0}\n"
         "  %ag.done = f32[16,8]{1,0} all-gather-done(%ag)\n")
  found = mesh_lib.collectives(hlo)
  assert [c.op for c in found] == ["all-reduce", "all-gather"]
  assert found[0].shapes == (("f32", (4,)), ("f32", (4, 4, 19, 4)),
                             ("bf16", (2, 3)))
  assert found[0].bytes == 16 + 4 * 4 * 4 * 19 * 4 + 12
  assert found[1].bytes == 16 * 8 * 4


def test_collectives_parser_refuses_a_result_it_cannot_read():
  """Issue 24: a result the pattern cannot read must not vanish from the
  list (a check for "no all-gather" would pass on nothing); here a layout
  nests parentheses two levels deep inside a tuple."""
  hlo = ("  %ar = f32[4]{0} all-reduce(%a), replica_groups={{0,1}}\n"
         "  %odd = (f32[8]{0:T(1024)S(1(2))}, f32[2]{0}) all-gather(%b, %c)\n")
  with pytest.raises(ValueError, match=r"1 of 2 collective instructions .*"
                     r"e\.g\.: %odd = \(f32\[8\]"):
    mesh_lib.collectives(hlo)
  # Names and operands that merely mention a kind are not instructions.
  assert [c.op for c in mesh_lib.collectives(
      '  %all-reduce-done.2 = f32[4]{0} all-reduce-done(%all-reduce-start.1)'
      ', metadata={op_name="jit(f)/all-gather"}\n')] == []


def test_csebgan_data_parallel_step_moves_no_images_between_devices(devices):
  """CSEBGAN's one D call on fakes and reals (issue 24): on the 8-device
  data mesh the step only all-reduces. With the two batches stacked end to
  end along the sharded batch axis, XLA permuted halves between devices
  (collective-permutes; 82 per chip per step at paper size on a v5e-16)."""
  from rsjax.train import aot  # pylint: disable=g-import-not-at-top
  config = tiny_configs.memory_csebgan()
  mesh = mesh_lib.make_mesh(config.mesh)
  assert mesh.shape["data"] == 8
  report = aot.compile_steps(config, mesh, steps=("train",))["train"]
  assert set(report.collectives) == {"all-reduce"}, report.collectives
