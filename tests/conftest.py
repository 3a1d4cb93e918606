"""Test setup: 8 simulated CPU devices, so sharded code runs on a real mesh.

XLA reads its flags when the backend starts, so they are set here, before
anything imports JAX. Test inputs are tiny, so compiling dominates: XLA's CPU
backend runs at its lowest optimization level, and compiled programs are kept
in a persistent cache (.pytest_cache/jax) that identical programs of later
tests and later runs reuse. TensorFlow (the input pipeline only) must not
grab accelerators.
"""

import os

_FLAGS = ("--xla_force_host_platform_device_count=8",
          "--xla_backend_optimization_level=0",
          "--xla_llvm_disable_expensive_passes=true")
for _flag in _FLAGS:
  if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402

_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      ".pytest_cache", "jax")
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_report_header(config):
  from tests import machine
  return machine.describe()


@pytest.fixture(scope="session")
def devices():
  """The 8 simulated CPU devices."""
  found = jax.devices()
  assert len(found) == 8, f"expected 8 simulated devices, got {found}"
  return found


@pytest.fixture(scope="session")
def synthetic_tiny(tmp_path_factory):
  """A TFDS data_dir holding rs_multisource/synthetic_tiny (built once)."""
  from data_builders import prepare  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp("tensorflow_datasets"))
  prepare.prepare("rs_multisource/synthetic_tiny", data_dir=data_dir)
  return data_dir


# No silent skips (issue 19): a skipped test must be expected, by its reason.
# The only ones allowed are TensorFlow's tf.test.TestCase.test_session, which
# the tfds builder tests inherit and TensorFlow skips as "Not a test."; any
# other skip (an importorskip, a pytest.skip, a skip marker) fails the run.
# A test that needs an optional dependency gets a marker and is deselected
# with -m, which is not a skip. Reports are noted where they arrive: in the
# plain process, or under pytest-xdist in the controller, to which the workers
# forward every test report and every skipped collection report.
ALLOWED_SKIP_REASONS = ("Not a test.",)
_unexpected_skips: list[str] = []


def _note_skip(report):
  if not report.skipped or hasattr(report, "wasxfail"):  # xfail: not a skip
    return
  longrepr = report.longrepr
  reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
  reason = reason.removeprefix("Skipped: ")
  if reason not in ALLOWED_SKIP_REASONS:
    _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report):
  _note_skip(report)


def pytest_collectreport(report):
  _note_skip(report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
  if hasattr(session.config, "workerinput"):  # an xdist worker: the
    return                                    # controller decides
  if _unexpected_skips and session.exitstatus in (
      pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
  if _unexpected_skips:
    terminalreporter.section("unexpected skips fail the run (tests/conftest.py)",
                             red=True)
    for line in _unexpected_skips:
      terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _trace_every_test_under_mutmut_stats():
  """`make mutants` (TESTING.md): mutmut's stats run
  (MUTANT_UNDER_TEST=stats) records which tests reach which function by
  running their Python bodies, but a jitted function runs its body only when
  it is traced, so a test that hits an earlier test's jit cache entry would
  never be run against that function's mutants. In that run only, every test
  starts with empty JAX caches; otherwise this does nothing."""
  if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    jax.clear_caches()
  yield
