"""`python -m sgd_train FLAGS`: `launch.train` with plain SGD in place of
every Adam, as `system_checks.sgd_system` does within one process.

Two runs that differ only in the order of their sums (one process or
several, one mesh or another) agree to float precision under SGD, whose
update is linear in the gradient; Adam's first update turns a round-off
gradient into a full step of either sign (see system_checks.STEP_RTOL).
JAX must not be used before launch.train joins the run, so nothing here
touches a device.

The rate is smaller than system_checks.SGD_LR (0.1), which compares single
steps: at 0.1 the tiny GAN's trajectory is chaotic, and a round-off
difference between one process and two grew about tenfold a step from the
fourth step on (measured: 2e-6 relative at step 4, 1e-4 at 5, 2e-2 at 7).
At 1e-3 it stayed at 1e-6 (tests/train/test_multiprocess.py checks ten steps).
"""

import runpy
from unittest import mock

import optax

from rsjax.systems import base

SGD_LR = 1e-3

if __name__ == "__main__":
  with mock.patch.object(base, "adam", lambda *_: optax.sgd(SGD_LR)):
    runpy.run_module("launch.train", run_name="__main__", alter_sys=True)
