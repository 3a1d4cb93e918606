"""The installed commands (`rsjax-train`, `rsjax-evaluate`, `rsjax-infer`,
`rsjax-compile`; [project.scripts] in pyproject.toml), each a launcher's
`cli()`, the same as `python -m launch.<name>` from any directory."""

from __future__ import annotations

import sys

from absl import flags


def as_main(name: str) -> None:
  """Gives the running command the --help of the launcher module `name`: its
  docstring and its flags, as `python -m` does (absl shows those of
  `__main__`, here the installed script)."""
  module, main = sys.modules[name], sys.modules["__main__"]
  if module is main:
    return
  main.__doc__ = module.__doc__
  for flag in flags.FLAGS.get_key_flags_for_module(module):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
