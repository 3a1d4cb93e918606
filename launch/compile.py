"""Compiles a config's train and eval steps for a TPU topology, on any host.

  python -m launch.compile --config configs/rs_spade.py --topology v5e:4x4
  python -m launch.compile --config configs/rs_spade.py --topology v5e:2x2 \
      --batch 32 --config.dtype=bfloat16 --steps train --profile
  python -m launch.compile --config configs/pix2pix.py:demo --topology v5e:2x2 \
      --mesh data=2,fsdp=2 --batch 32 --json pix2pix_v5e.json
  rsjax-compile --config rs_spade:demo --topology v5e:2x2

`rsjax-compile` is the installed command (any directory); --config takes a
config file or one of this project's configs by name, as launch.train.

Needs the TPU compiler: `pip install -e '.[tpu]'` (libtpu; no TPU needed).
The steps are the trainer's own (`rsjax.train.aot`), built from abstract
shapes (no data, no weights) and compiled by the real TPU compiler for the
named topology's chips; nothing runs. Prints, per step and per device: HBM
(arguments, outputs not written into donated inputs, temporaries, code) and
its share of the chip's capacity, FLOPs, the collectives by kind (count and
MB), and a roofline time of the step from the chip's published
peak FLOP/s and HBM bandwidth (`rsjax.train.tpu_chips`). `--json` writes the
same, one object per step under "steps" (with the profile below), to a
local path or a URI
(`gs://...`, `rsjax.store.paths`), written whole or not at all.

--profile also prints, per step, the TPU compiler's own estimate of its
time (the sum of the estimated cycles of its instructions at the chip's
clock), the efficiency (FLOP bound / estimate) and the top cost centres by
kind and by Flax layer, forward and backward (`rsjax.train.tpu_profile`). It
is the compiler's model: no interconnect time, no host input pipeline.

A step that does not fit in the chip's HBM exits with status 1 and a message
saying by how much, and which batch or fsdp mesh would fit (the JSON is
written first). --mesh sets `config.mesh` (a size of -1 takes the rest of the
chips), --batch `config.data.batch_size` and `config.data.eval_batch_size`,
--tile `config.data.tile_size` (a tfds dataset's tiles are the size it was
built at; the declared fields' shapes are used here).
"""

from __future__ import annotations

import os
import time

from absl import flags, logging
from ml_collections import config_flags

from launch import commands, user_errors
from rsjax.store import atomic
from rsjax.store import paths

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/rs_spade.py:demo, "
    "or a config by name, e.g. rs_spade:demo (launch/config_files.py).",
    lock_config=False)
_TOPOLOGY = flags.DEFINE_string(
    "topology", None, "TPU topology, e.g. v5e:2x2, v5e:4x4, v5p:2x2x2, v4:2x2x1, "
    "v6e:2x2.", required=True)
_MESH = flags.DEFINE_string(
    "mesh", None, "Mesh axes and sizes, e.g. data=4,fsdp=4 (default: the "
    "config's mesh).")
_BATCH = flags.DEFINE_integer("batch", None, "Global batch size.")
_TILE = flags.DEFINE_integer("tile", None, "Tile size in pixels.")
_STEPS = flags.DEFINE_list("steps", ["train", "eval"],
                           "Which steps to compile: train, eval.")
_JSON = flags.DEFINE_string("json", None, "Write the report as JSON here.")
_DUMP_HLO = flags.DEFINE_string(
    "dump_hlo", None, "Write each compiled step's HLO text to "
    "DIR/<step>.hlo.txt (local or a URI).")
_PROFILE = flags.DEFINE_bool(
    "profile", False, "Also print the compiler's estimate of each step's "
    "time, its efficiency and the top cost centres by kind and Flax layer "
    "(the JSON always holds them).")


def parse_mesh(text: str) -> tuple[tuple[str, int], ...]:
  """'data=4,fsdp=2' -> (('data', 4), ('fsdp', 2))."""
  axes = []
  for part in text.split(","):
    name, _, size = part.partition("=")
    try:
      axes.append((name.strip(), int(size)))
    except ValueError:
      raise ValueError(f"--mesh {text!r}: write axes as name=size joined by "
                       f"commas, e.g. data=4,fsdp=2") from None
  return tuple(axes)


def main(argv):
  del argv
  # Nothing of this host's devices is used: compile-only TPU devices are.
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from rsjax.train import aot  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  if _MESH.value:
    config.mesh = parse_mesh(_MESH.value)
  if _BATCH.value:
    config.data.batch_size = _BATCH.value
    config.data.eval_batch_size = _BATCH.value
  if _TILE.value:
    config.data.tile_size = _TILE.value
  unknown = sorted(set(_STEPS.value) - {"train", "eval"})
  if unknown or not _STEPS.value:
    logging.error("--steps: unknown step(s) %s; valid: train, eval", unknown)
    return 1
  try:
    mesh = aot.tpu_mesh(_TOPOLOGY.value, config.mesh)
  except (RuntimeError, ValueError) as error:
    logging.error("%s", error)
    return 1
  start = time.perf_counter()
  reports = aot.compile_steps(config, mesh, steps=tuple(_STEPS.value))
  seconds = time.perf_counter() - start
  shape = aot.mesh_shape(mesh)
  print(aot.summary(reports, shape, _TOPOLOGY.value))
  if _PROFILE.value:
    from rsjax.train import tpu_profile  # pylint: disable=g-import-not-at-top
    for report in reports.values():
      print(f"\n{report.name} step: " + (
          tpu_profile.summary(report.profile) if report.profile else
          "no compiler estimate (no estimated cycles in the HLO, or no "
          "clock figure for the chip)"))
  print(f"compiled in {seconds:.0f} s")
  if _JSON.value:
    atomic.write_json(_JSON.value, {
        "topology": _TOPOLOGY.value, "mesh": shape,
        "compile_seconds": seconds,
        "steps": {name: report.to_json(shape, _TOPOLOGY.value)
                  for name, report in reports.items()}}, indent=1)
  if _DUMP_HLO.value:
    for report in reports.values():
      atomic.write_text(paths.join(_DUMP_HLO.value, f"{report.name}.hlo.txt"),
                        report.hlo)
  for report in reports.values():
    try:
      aot.check_fits(report, shape)
    except aot.StepDoesNotFit as error:
      logging.error("%s", error)
      return 1
  return 0


def cli():
  """The `rsjax-compile` command: `python -m launch.compile` as installed."""
  commands.as_main(__name__)
  flags.mark_flags_as_required(["config"])
  user_errors.run(main)


if __name__ == "__main__":
  cli()
