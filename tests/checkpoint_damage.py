"""Damage done to a real checkpoint after it was written, as crashes and
failing disks do it: array files cut short or lost, the tree's metadata
missing, a step folder left empty.

Orbax 0.12 writes step s of a run as `<workdir>/checkpoints/<s>/default/`:
`_METADATA` (the tree of the State), `manifest.ocdbt`, and the arrays in
OCDBT data files under `ocdbt.process_<i>/d/`. Each damage takes such a step
folder; a test checks that the damaged step no longer restores.
"""

import glob
import os
import shutil


def _array_files(step_folder) -> list[str]:
  files = sorted(glob.glob(os.path.join(step_folder, "default",
                                        "ocdbt.process_*", "d", "*")))
  assert files, f"{step_folder}: no OCDBT array files (Orbax's layout changed?)"
  return files


def truncate_array_files(step_folder) -> None:
  """Cuts every array file of the step short after its first 16 bytes. (Cut
  to half, the files sometimes still held every byte the restore reads, as
  their ends are not all read.)"""
  for path in _array_files(step_folder):
    os.truncate(path, 16)


def delete_array_files(step_folder) -> None:
  """Deletes the step's array files."""
  for path in _array_files(step_folder):
    os.remove(path)


def delete_metadata(step_folder) -> None:
  """Deletes the step's `_METADATA` (the tree of the saved State)."""
  os.remove(os.path.join(step_folder, "default", "_METADATA"))


def empty_step_folder(step_folder) -> None:
  """Leaves the step's folder, empty."""
  shutil.rmtree(step_folder)
  os.mkdir(step_folder)


DAMAGES = {
    "truncated_array_files": truncate_array_files,
    "deleted_array_files": delete_array_files,
    "missing_metadata": delete_metadata,
    "empty_step_folder": empty_step_folder,
}


def damage(workdir, step: int, name: str) -> None:
  """Does damage `name` (a key of DAMAGES) to checkpoint `step` of
  `workdir`."""
  DAMAGES[name](os.path.join(workdir, "checkpoints", str(step)))

