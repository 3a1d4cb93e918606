"""`python -m emulated_gcs_launch MODULE FLAGS`: a launcher (`launch.train`,
`launch.experiment`, `launch.evaluate`) on a workdir in a GCS emulator
(tests/train/test_remote_workdir.py, tests/eval/experiments/
test_remote_experiment.py).

Everything a run writes goes through `etils.epath` (fsspec's gcsfs, pointed
at the emulator by STORAGE_EMULATOR_HOST) or Orbax's TensorStore (pointed at
it by TENSORSTORE_GCS_HTTP_URL), except TensorBoard's event files:
TensorFlow writes those with its own GCS client, which always calls
www.googleapis.com. Here they go to the log instead (clu's logging writer);
on real GCS TensorFlow writes them itself.
"""

import runpy
import sys
from unittest import mock

from clu import metric_writers

_create_default_writer = metric_writers.create_default_writer


def _without_tensorboard(logdir, *, just_logging=False, **kwargs):
  del just_logging
  return _create_default_writer(logdir, just_logging=True, **kwargs)


if __name__ == "__main__":
  module = sys.argv.pop(1)
  with mock.patch.object(metric_writers, "create_default_writer",
                         _without_tensorboard):
    runpy.run_module(module, run_name="__main__", alter_sys=True)
