"""One package per paper: rsjax/systems/<paper>/ imports the shared modules of
rsjax/systems and never another paper's package, except where one paper's
system genuinely uses another's (CSEBGAN's conductor and evaluator are
segmentation systems)."""

from __future__ import annotations

import ast
import os

SYSTEMS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "rsjax", "systems")
ALLOWED = {("csebgan", "segmentation")}


def _papers() -> list[str]:
  return sorted(n for n in os.listdir(SYSTEMS)
                if os.path.isfile(os.path.join(SYSTEMS, n, "__init__.py")))


def _imported_papers(paper: str, papers) -> set[str]:
  found = set()
  for root, _, names in os.walk(os.path.join(SYSTEMS, paper)):
    for name in names:
      if not name.endswith(".py"):
        continue
      with open(os.path.join(root, name)) as f:
        tree = ast.parse(f.read())
      for node in ast.walk(tree):
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                   else [node.module or ""] + [
                       f"{node.module}.{a.name}" for a in node.names]
                   if isinstance(node, ast.ImportFrom) else [])
        for module in modules:
          parts = module.split(".")
          if parts[:2] == ["rsjax", "systems"] and len(parts) > 2:
            found.add(parts[2])
  return found & set(papers) - {paper}


def test_every_paper_has_a_package():
  assert _papers() == ["cloud_removal", "csebgan", "cycle_fusion", "rs_spade",
                       "segmentation"]


def test_paper_packages_do_not_import_each_other():
  papers = _papers()
  crossing = sorted((paper, other) for paper in papers
                    for other in _imported_papers(paper, papers))
  assert set(crossing) <= ALLOWED, crossing


def test_shared_modules_import_no_paper():
  papers = set(_papers())
  uses = []
  for name in sorted(os.listdir(SYSTEMS)):
    if not name.endswith(".py") or name == "__init__.py":
      continue
    with open(os.path.join(SYSTEMS, name)) as f:
      text = f.read()
    for node in ast.walk(ast.parse(text)):
      if isinstance(node, ast.ImportFrom) and node.module:
        parts = node.module.split(".")
        targets = ([parts[2]] if len(parts) > 2 else
                   [a.name for a in node.names])
        if parts[:2] == ["rsjax", "systems"]:
          uses += [(name, t) for t in targets if t in papers]
  # The registry names paper modules as strings only (imported on demand).
  assert not uses, uses
