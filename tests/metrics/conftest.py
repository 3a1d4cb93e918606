"""Mutation-test support for the metrics tests.

The metrics jit their kernels by assignment (`_psnr = jax.jit(_psnr)`), so
the Python body runs only when a new trace is needed. mutmut's stats run
(`MUTANT_UNDER_TEST=stats`, `make mutants`) records which tests call which
function by running the bodies; without this fixture a test that hits a jit
cache entry of an earlier test (same shapes, e.g. psnr at data_range 255 after
data_range 1) would not be recorded, and a mutant of the kernel would never be
run against it. Outside the stats run this fixture does nothing.
"""

import os

import jax
import pytest


@pytest.fixture(autouse=True)
def _trace_every_test_under_mutmut_stats():
  if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    jax.clear_caches()
  yield
