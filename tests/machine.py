"""What machine the suite runs on: CPU, the BLAS cores numpy and scipy picked
at run time, library versions. Printed by .ci/run before the tests and in pytest's header (without -q;
see conftest.pytest_report_header), so a failure on another machine can be
read.

jaxlib's CPU linear algebra (eigh, cholesky, ...) calls the LAPACK that scipy
ships, so scipy's OpenBLAS core is also the one behind jnp.linalg here.
"""

from __future__ import annotations

import ctypes
import glob
import importlib
import os
import platform


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _openblas_core(package: str) -> str:
  """The kernel set OpenBLAS chose for this CPU (or OPENBLAS_CORETYPE)."""
  try:
    module = importlib.import_module(package)
  except ImportError:
    return "not installed"
  libs = os.path.join(os.path.dirname(module.__file__), "..", f"{package}.libs")
  for path in glob.glob(os.path.join(libs, "*openblas*.so*")):
    library = ctypes.CDLL(path)
    for symbol in ("scipy_openblas_get_corename64_",
                   "scipy_openblas_get_corename", "openblas_get_corename"):
      function = getattr(library, symbol, None)
      if function is not None:
        function.restype = ctypes.c_char_p
        return f"OpenBLAS {function().decode()}"
  return "BLAS core unknown (not a bundled OpenBLAS)"


def describe() -> list[str]:
  import jax
  import numpy
  import scipy
  return [
      f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.machine()}",
      f"blas: numpy {numpy.__version__} {_openblas_core('numpy')}; "
      f"scipy {scipy.__version__} {_openblas_core('scipy')}; "
      f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}",
      f"jax {jax.__version__}, jaxlib "
      f"{importlib.import_module('jaxlib').__version__}",
  ]


if __name__ == "__main__":
  print("\n".join(describe()))
