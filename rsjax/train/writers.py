"""Metric writers: clu's default (logging + TensorBoard) plus JSON lines.

`metrics.jsonl` in the workdir gets one `{"step": s, "name": value, ...}` line
per write, which is easy to read back in notebooks and tests. A run resumed
from step k first drops the lines after step k (`drop_metrics_after`): it
computes those steps again, so every step is logged once, by the run whose
checkpoints survive. Only process 0 writes files. An object store cannot
append to an object, so on a remote workdir (`gs://...`) the file is
uploaded whole, at most once a minute and on `flush` (the trainer flushes
at every checkpoint, so the lines of the steps a checkpoint holds are stored
with it; lines lost to a kill between uploads are of steps a resumed run
computes again). If TensorBoard's
writer cannot be imported (a JAX-only GPU box without TensorFlow), the run
logs to the console and JSON lines only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from rsjax.store import atomic
from rsjax.store import paths


class JsonLinesWriter:
  """A minimal clu-style MetricWriter appending scalars to a JSON-lines file.

  A local file gets each line at once. A remote one (`paths.is_remote`) is
  uploaded whole when `upload_every_s` seconds have passed since the last
  upload, and on `flush` and `close`.
  """

  def __init__(self, path: str, *, upload_every_s: float = 60.0,
               clock=time.monotonic):
    self._path = path
    self._remote = paths.is_remote(path)
    self._text: str | None = None  # a remote file's content, once read
    self._pending = False          # lines not uploaded yet
    self._upload_every_s, self._clock = upload_every_s, clock
    self._uploaded_at = clock()

  def _append(self, line: str) -> None:
    if not self._remote:
      with open(self._path, "a") as f:
        f.write(line)
      return
    if self._text is None:
      file = paths.of(self._path)
      self._text = file.read_text() if file.exists() else ""
    self._text += line
    self._pending = True
    if self._clock() - self._uploaded_at >= self._upload_every_s:
      self.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    row = {"step": int(step)}
    row.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    self._append(json.dumps(row) + "\n")

  def write_images(self, step, images):  # images go to PNG files instead
    del step, images

  def write_texts(self, step, texts):
    del step, texts

  def write_hparams(self, hparams):
    self._append(json.dumps({"hparams": {k: str(v) for k, v in
                                         hparams.items()}}) + "\n")

  def write_summaries(self, step, values, metadata=None):
    del step, values, metadata

  def write_histograms(self, step, arrays, num_buckets=None):
    del step, arrays, num_buckets

  def write_audios(self, step, audios, *, sample_rate):
    del step, audios, sample_rate

  def write_videos(self, step, videos):
    del step, videos

  def write_pointcloud(self, step, point_clouds, *, point_colors=None,
                       configs=None):
    del step, point_clouds, point_colors, configs

  def flush(self) -> None:
    """Uploads a remote file's lines not uploaded yet."""
    if self._pending:
      paths.of(self._path).write_text(self._text)
      self._pending = False
      self._uploaded_at = self._clock()

  def close(self) -> None:
    self.flush()


def drop_metrics_after(workdir: str, step: int) -> int:
  """Rewrites `<workdir>/metrics.jsonl` (atomically, on process 0) without
  the lines a run resumed from `step` writes again; returns how many it
  dropped.

  Kept: lines of steps <= `step`, and the hparams line unless `step` is 0
  (a run from scratch writes its own). Dropped: lines of later steps (logged
  by a run that was killed before checkpointing them) and lines that are not
  JSON (one cut short by a kill mid-write).
  """
  path = paths.join(workdir, "metrics.jsonl")
  if jax.process_index() != 0 or not paths.of(path).exists():
    return 0
  lines = paths.of(path).read_text().splitlines(keepends=True)
  kept = []
  for line in lines:
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      continue
    if not isinstance(row, dict):
      continue
    if row.get("step", 0) <= step and ("step" in row or step > 0):
      kept.append(line if line.endswith("\n") else line + "\n")
  dropped = len(lines) - len(kept)
  if dropped or kept != lines:
    atomic.write_text(path, "".join(kept))
  if dropped:
    logging.info("%s: dropped %d lines after step %d (this run logs those "
                 "steps again)", path, dropped, step)
  return dropped


def create_writer(workdir: str):
  """A writer for the run: clu default + JSON lines on process 0."""
  is_main = jax.process_index() == 0
  try:
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
    default = metric_writers.create_default_writer(
        workdir, just_logging=not is_main, asynchronous=False)
  except ImportError as error:
    logging.warning("TensorBoard writer unavailable (%s); logging to the "
                    "console and metrics.jsonl only.", error)
    from clu.metric_writers import logging_writer, multi_writer  # pylint: disable=g-import-not-at-top
    default = multi_writer.MultiWriter([logging_writer.LoggingWriter()])
  if not is_main:
    return default
  paths.of(workdir).mkdir(parents=True, exist_ok=True)
  from clu.metric_writers import multi_writer  # pylint: disable=g-import-not-at-top
  return multi_writer.MultiWriter(
      [default, JsonLinesWriter(paths.join(workdir, "metrics.jsonl"))])
