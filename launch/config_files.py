"""Where a launcher's --config finds its file: a path, or a config by name.

--config is `<file>[:<arg>]` (ml_collections' config file flag; the arg picks
a variant, configs/variants.py). The file is, in this order:

1. a path that exists from the current directory, or an absolute one:
   `--config configs/rs_spade.py:demo` in the repository root, or a config
   file of your own anywhere;
2. else one of this project's configs, named `rs_spade`, `rs_spade.py` or
   `configs/rs_spade.py`, read from the installed `configs` package. So
   `--config rs_spade:demo`, and the README's `configs/rs_spade.py:demo`,
   work from any directory once the package is installed (`pip install -e .`).

Anything else is refused while the flags are parsed, in absl's words for a
bad flag (`launch.user_errors`), naming the file and this project's configs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import configs
from absl import flags
from ml_collections.config_flags import config_flags as config_flags_lib

HELPERS = ("__init__", "common", "datasets", "variants")
"""Modules of the configs package that are no config."""


class ConfigNotFound(ValueError):
  """A --config file that is neither a path nor a config of this project."""


def directory() -> str:
  """The folder of the installed `configs` package."""
  return os.path.dirname(os.path.abspath(configs.__file__))


def names() -> list[str]:
  """This project's configs, by name (`rs_spade`, ...)."""
  return sorted(file[:-3] for file in os.listdir(directory())
                if file.endswith(".py") and file[:-3] not in HELPERS)


def resolve(value: str, flag: str = "config") -> str:
  """`value` (`<file>[:<arg>]` of --`flag`) with the file that it names;
  ConfigNotFound when there is none (see the module docstring)."""
  file, colon, arg = value.partition(":")
  if os.path.isfile(file):
    return value
  name = os.path.normpath(file) if file else ""
  name = name.removeprefix("configs" + os.sep).removesuffix(".py")
  if name in names():
    return os.path.join(directory(), f"{name}.py") + colon + arg
  raise ConfigNotFound(
      f"--{flag}={value}: no file {file!r} in {os.getcwd()} and no config of "
      f"this project named so; its configs, by name (e.g. --{flag} "
      f"rs_spade:demo): {', '.join(names())}")


def resolve_argv(argv: Sequence[str],
                 flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """`argv` (a program name, then its args; flag files read) with the value
  of every config file flag of `flag_values` resolved (`resolve`)."""
  config_flags = {name for name in flag_values
                  if isinstance(flag_values[name].parser,
                                config_flags_lib.ConfigFileFlagParser)}
  argv = [*argv[:1],
          *flag_values.read_flags_from_files(argv[1:], force_gnu=False)]
  for index in range(1, len(argv)):
    if argv[index] == "--":
      break
    match = re.fullmatch(r"--?([\w-]+)(=(.*))?", argv[index], re.DOTALL)
    if not match or match.group(1) not in config_flags:
      continue
    name = match.group(1)
    if match.group(2):
      argv[index] = f"--{name}={resolve(match.group(3), name)}"
    elif index + 1 < len(argv):
      argv[index + 1] = resolve(argv[index + 1], name)
  return argv
