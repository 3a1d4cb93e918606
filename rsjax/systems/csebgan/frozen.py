"""Frozen networks of the CSEBGAN system, loaded from files the user has.

- `load_vgg(path, key, ...)`: the VGG19 feature extractor of the perceptual
  loss (CSEBGAN Eq. 7) and of the Frechet / LPIPS-style metrics, from the
  `.npz` layout of `rsjax.nn.vgg`; errors name the file and the config key.
- `load_segmenter(workdir, key, ...)`: a segmenter trained by the
  `segmentation` system (`configs/unet_seg.py`), the newest checkpoint of
  its workdir loaded by `rsjax.systems.trained.load_run`:
  the pre-trained U-Net that scores generated images (Sec. IV-A-3) or the
  frozen conductor of the ablation (Table II, "frozen C").

Loading is host I/O, so it happens when the system is built; the arrays then
enter `State.params` (without optimizer state) so that the jitted steps get
them as arguments and checkpoints are self-contained.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.nn import vgg as vgg_lib
from rsjax.store import run_config
from rsjax.systems import trained


def load_vgg(path: str, key: str, **fields: Any):
  """(VGG19 module, {'params': numpy arrays}) from `path`; a clear error
  naming `path` and the config `key` for a missing or malformed file."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{key} = {path!r}: no such file (a VGG19 .npz written by "
        f"`python -m rsjax.nn.vgg_convert`)")
  try:
    module, variables = vgg_lib.load_vgg19(path, **fields)
  except (OSError, ValueError, KeyError) as error:
    raise ValueError(f"{key} = {path!r}: not a usable VGG19 weight file: "
                     f"{error}") from error
  return module, jax.tree.map(np.asarray, variables)


def load_segmenter(workdir: str, key: str, *, num_classes: int,
                   image_field: str):
  """(Segmentation system, {'params', 'batch_stats'} as numpy) of the newest
  checkpoint in `workdir`, checked against `num_classes` and required to read
  `image_field` (the generated field)."""
  from rsjax.systems.segmentation.system import NET  # pylint: disable=g-import-not-at-top
  workdir = os.fspath(workdir)
  try:
    saved = run_config.load(workdir)
  except FileNotFoundError as error:
    raise FileNotFoundError(f"{key} = {workdir!r}: {error}") from error
  if saved.get("system") != "segmentation":
    raise ValueError(f"{key} = {workdir!r} holds a {saved.get('system')!r} run; "
                     f"expected a 'segmentation' workdir")
  if int(saved.num_classes) != num_classes:
    raise ValueError(f"{key} = {workdir!r}: its segmenter has "
                     f"{saved.num_classes} classes, config.num_classes is "
                     f"{num_classes}")
  if image_field not in tuple(saved.inputs):
    raise ValueError(f"{key} = {workdir!r}: its segmenter reads "
                     f"{list(saved.inputs)}, not the generated {image_field!r}")
  try:
    run = trained.load_run(workdir, config=saved)
  except FileNotFoundError as error:
    raise FileNotFoundError(f"{key} = {workdir!r}: {error}") from error
  state = run.state
  variables = {"params": state.params[NET], "batch_stats": state.batch_stats[NET]}
  return run.system, jax.tree.map(np.asarray, variables)


def check_same_structure(loaded: Mapping, abstract: Mapping, message: str):
  """ValueError(`message`) unless the params and batch_stats of two variable
  trees have the same paths, shapes and dtypes."""
  def shapes(tree):
    tree = {k: tree.get(k, {}) for k in ("params", "batch_stats")}
    return jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype)), tree)

  if shapes(loaded) != shapes(abstract):
    raise ValueError(message)
