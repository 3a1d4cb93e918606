"""The Colab demos in notebooks/ run top to bottom (at their small setting).

Each notebook is executed in a fresh Jupyter kernel (nbclient + ipykernel)
from the repository root with RSJAX_NOTEBOOK_SMALL=1, which its setup cell
reads: tiny networks, the 64-pixel synthetic dataset and 2 training steps,
so every cell (build, train, evaluate, full-scene inference, plots) runs and
an API change that breaks a notebook fails here.
"""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
  # Declared in the `test` extra (pyproject.toml) with ipykernel, like pytest
  # itself: a missing one is a broken test environment, not a reason to skip.
  import nbclient
  import nbformat
  notebook = nbformat.read(path, as_version=4)
  # The kernel inherits this environment: one CPU device (not the 8 of the
  # test process) compiling at XLA's lowest optimization level, like the
  # other tests, and the notebook's workdirs under a temporary root.
  monkeypatch.setenv("RSJAX_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                     "--xla_llvm_disable_expensive_passes=true")
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR",
                     str(ROOT / ".pytest_cache" / "jax_notebooks"))
  monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  workdir = tmp_path / "workdir"
  monkeypatch.setenv("RSJAX_NOTEBOOK_WORKDIR", str(workdir))
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(ROOT)}})
  client.execute()
  errors = [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.output_type == "error"]
  assert not errors
  assert os.listdir(workdir)
