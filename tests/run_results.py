"""What a training run left in its workdir, read back to compare runs: the
training metrics it logged, the files it wrote, States bit for bit."""

import json
import os

import jax
import numpy as np


def train_lines(workdir) -> list[dict]:
  """The training-metric lines of metrics.jsonl, in file order."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  return [l for l in lines if any(k.startswith("train/") for k in l)]


def files(folder) -> dict[str, int]:
  """{path relative to `folder`: size} of every file under `folder`."""
  return {os.path.relpath(os.path.join(root, name), folder):
          os.path.getsize(os.path.join(root, name))
          for root, _, names in os.walk(folder) for name in names}


def assert_states_equal(a, b) -> None:
  """Every leaf of States (or any pytrees) `a` and `b` is bit-identical."""
  leaves_a, tree_a = jax.tree_util.tree_flatten_with_path(
      jax.device_get(a))
  leaves_b, tree_b = jax.tree_util.tree_flatten_with_path(
      jax.device_get(b))
  assert tree_a == tree_b
  for (path, x), (_, y) in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y),
                                  err_msg=jax.tree_util.keystr(path))
