"""The house plan (docs/ARCHITECTURE.md): imports only point down.

  store, mesh, console -> geo -> data -> nn / losses / metrics -> systems -> train
  -> eval -> launch

Every `import` in the code counts, also those inside functions (a lazy
import is still a dependency). data_builders use store, console, geo and data;
configs import nothing of rsjax; nothing under rsjax imports data_builders,
configs or launch. Within one floor imports may go sideways, but no set of
modules imports itself round a circle.
"""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The floor of each part of the house, lowest first.
FLOORS = {
    "rsjax.store": 0, "rsjax.mesh": 0, "rsjax.console": 0,
    "rsjax.geo": 1,
    "rsjax.data": 2,
    "rsjax.nn": 3, "rsjax.losses": 3, "rsjax.metrics": 3,
    "rsjax.systems": 4,
    "rsjax.train": 5,
    "rsjax.eval": 6,
    "launch": 7,
}
# What the parts beside the rsjax package may use of it.
BUILDERS_MAY_USE = ("rsjax.store", "rsjax.console", "rsjax.geo", "rsjax.data")
OUTSIDE = ("data_builders", "configs", "launch", "benchmarks", "tests")


def _module_name(path: str) -> str:
  relative = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
  if relative[-1] == "__init__":
    relative = relative[:-1]
  return ".".join(relative)


def _python_files(folder: str):
  for root, _, names in os.walk(os.path.join(ROOT, folder)):
    for name in sorted(names):
      if name.endswith(".py"):
        yield os.path.join(root, name)


def _imports(path: str) -> set[str]:
  """Absolute module names imported anywhere in the file (first-party)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.add(node.module)
      # `from rsjax.systems import base` imports the module rsjax.systems.base
      found.update(f"{node.module}.{alias.name}" for alias in node.names)
  first_party = ("rsjax",) + OUTSIDE
  return {name for name in found if name.split(".")[0] in first_party}


def _graph(folders) -> dict[str, set[str]]:
  graph = {}
  for folder in folders:
    for path in _python_files(folder):
      graph[_module_name(path)] = _imports(path)
  modules = set(graph)
  # Keep the edges that name modules (drop `rsjax.x.function` leaves).
  return {module: {name for name in targets if name in modules
                   and name != module}
          for module, targets in graph.items()}


def _floor(module: str) -> int | None:
  for prefix, floor in sorted(FLOORS.items(), key=lambda kv: -len(kv[0])):
    if module == prefix or module.startswith(prefix + "."):
      return floor
  return None


def test_every_rsjax_module_has_a_floor():
  graph = _graph(["rsjax"])
  homeless = sorted(m for m in graph if m != "rsjax" and _floor(m) is None)
  assert not homeless, f"modules outside the house plan: {homeless}"


def test_imports_only_point_down():
  graph = _graph(["rsjax", "launch"])
  upward = sorted(
      f"{module} (floor {_floor(module)}) imports {target} (floor "
      f"{_floor(target)})"
      for module, targets in graph.items() for target in targets
      if _floor(module) is not None and _floor(target) is not None
      and _floor(target) > _floor(module))
  assert not upward, "\n".join(upward)


def test_rsjax_imports_nothing_outside_the_package():
  outside = sorted(
      f"{path}: {name}" for path in _python_files("rsjax")
      for name in _imports(path) if name.split(".")[0] in OUTSIDE)
  assert not outside, "\n".join(outside)


def test_configs_are_data():
  uses = sorted(f"{path}: {name}" for path in _python_files("configs")
                for name in _imports(path) if name.split(".")[0] == "rsjax")
  assert not uses, "\n".join(uses)


def test_data_builders_use_only_store_console_geo_and_data():
  # `from rsjax import console` also names the package itself: "rsjax".
  uses = sorted(
      f"{path}: {name}" for path in _python_files("data_builders")
      for name in _imports(path) if name.split(".")[0] == "rsjax"
      and name != "rsjax"
      and not any(name == p or name.startswith(p + ".")
                  for p in BUILDERS_MAY_USE))
  assert not uses, "\n".join(uses)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import circle of the graph, or None (depth-first search)."""
  state, stack = {}, []

  def visit(module):
    state[module] = "open"
    stack.append(module)
    for target in sorted(graph.get(module, ())):
      if state.get(target) == "open":
        return stack[stack.index(target):] + [target]
      if target not in state:
        found = visit(target)
        if found:
          return found
    stack.pop()
    state[module] = "done"
    return None

  for module in sorted(graph):
    if module not in state:
      found = visit(module)
      if found:
        return found
  return None


def test_no_import_circle():
  graph = _graph(["rsjax", "data_builders", "configs", "launch"])
  # A package's __init__ importing its own modules is not a circle of ideas.
  for module, targets in graph.items():
    graph[module] = {t for t in targets if not module.startswith(t + ".")}
  circle = _cycle(graph)
  assert circle is None, " -> ".join(circle)


def test_the_checks_see_a_circle_and_an_upward_import():
  assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert _cycle({"a": {"b"}, "b": set()}) is None
  assert _floor("rsjax.data.pipeline") < _floor("rsjax.train.trainer")
  assert _floor("rsjax.store.atomic") == 0 and _floor("launch.train") == 7
