"""The launchers' one error style: a user's mistake ends in a short message
naming what is wrong and a non-zero status, not a traceback.

Every launcher that takes `--config` starts with `run(main)` instead of
`app.run(main)`:

- An override of a key the config does not have (a typo such as
  `--config.model.genrator=unet`) is refused while the flags are parsed, in
  absl's words for a bad flag, with status 1:

    FATAL Flags parsing error: unknown config key 'model.genrator'
    (--config.model.genrator=unet); closest valid keys: model.generator
    Pass --helpshort or --helpfull to see help on flags.

  (the first line is one line, wrapped here; several unknown keys are named
  in it one after another). ml_collections alone ends in an AttributeError,
  KeyError or TypeError traceback. The closest keys are
  `difflib.get_close_matches` over the dotted paths of every key of the
  config (`key_paths`); with none close, the keys of the deepest group that
  exists are listed. A config file arg that is not a known variant is refused
  by the config itself (`configs/variants.py`, naming the valid parts); a
  config file that is neither a path nor a config of this project by name
  (`launch.config_files`) is refused naming the configs there are.
- A dataset that is not built (`rsjax.data.tfds_builder.DatasetNotBuilt`)
  stops main with its message (dataset, data_dir, the folder looked in) and
  the command that builds it (`data_builders.prepare.build_command`); a
  split it lacks (`MissingSplit`) and a training split smaller than one
  batch (`TooFewExamples`: split, example count, batch size) with their
  messages. All exit with status 1; the trainer raises them before it
  creates the workdir.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
import textwrap
from collections.abc import Callable, Sequence

import ml_collections
from absl import app, flags, logging
from ml_collections.config_flags import config_flags as config_flags_lib

from launch import config_files
from rsjax import console


def key_paths(config, prefix: str = "") -> list[str]:
  """The dotted path of every key of `config`, groups and their keys alike."""
  paths = []
  for key, value in config.items():
    path = f"{prefix}{key}"
    paths.append(path)
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      paths += key_paths(value, f"{path}.")
  return paths


def _deepest_group(config, key: str) -> tuple[str, object]:
  """(dotted path, value) of the longest prefix of `key` that is a group of
  `config` ('' for the config itself)."""
  path, node = "", config
  for part in key.split("."):
    part = part.split("[")[0]  # an item of a tuple field: `a.b[0]`
    value = node.get(part) if isinstance(
        node, (ml_collections.ConfigDict, dict)) else None
    if not isinstance(value, (ml_collections.ConfigDict, dict)):
      break
    path, node = f"{path}{part}.", value
  return path, node


def has_key(config, key: str) -> bool:
  """Whether `key` (a dotted path) names a key of `config`."""
  group, node = _deepest_group(config, key)
  rest = key[len(group):]
  return not rest or ("." not in rest and rest.split("[")[0] in node)


def closest_keys(config, key: str, n: int = 3) -> list[str]:
  """The valid dotted key paths most like `key`, closest first; the groups
  that hold it (`model` for `model.genrator`) are no suggestion."""
  group, _ = _deepest_group(config, key)
  parts = group.split(".")[:-1]
  holders = {".".join(parts[:i + 1]) for i in range(len(parts))}
  return difflib.get_close_matches(
      key, [path for path in key_paths(config) if path not in holders], n=n,
      cutoff=0.6)


def unknown_key_message(config, key: str, given: str) -> str:
  """One line: `key` (as `given` on the command line) is not a key of
  `config`, with the closest valid keys."""
  message = f"unknown config key {key!r} ({given})"
  closest = closest_keys(config, key)
  if closest:
    return f"{message}; closest valid keys: {', '.join(closest)}"
  group, node = _deepest_group(config, key)
  where = f"config.{group[:-1]}" if group else "the config"
  return f"{message}; keys of {where}: {', '.join(sorted(node))}"


def _flag_value(argv: Sequence[str], name: str) -> str | None:
  """The value given to --name on the command line (`--name=v`, `--name v`)."""
  for index, arg in enumerate(argv):
    match = re.match(rf"^--?{re.escape(name)}(=(.*))?$", arg)
    if match and match.group(1):
      return match.group(2)
    if match and index + 1 < len(argv):
      return argv[index + 1]
  return None


def _overrides(argv: Sequence[str], name: str) -> dict[str, str]:
  """{dotted key: the arg that overrides it} of every --name.<key> in argv,
  found as ml_collections finds them."""
  found = {}
  for arg in argv:
    if re.match(rf"^-{{1,2}}(no)?{re.escape(name)}\.", arg):
      found[arg.split("=", 1)[0].split(".", 1)[1]] = arg
  return found


def unknown_keys_message(argv: Sequence[str],
                         flag_values: flags.FlagValues = flags.FLAGS
                         ) -> str | None:
  """What the config overrides in `argv` name that their config lacks, one
  clause per unknown key; None when every key exists."""
  argv = flag_values.read_flags_from_files(list(argv), force_gnu=False)
  problems = []
  for name in list(flag_values):
    flag = flag_values[name]
    if (not isinstance(flag.parser, config_flags_lib.ConfigFileFlagParser)
        or flag.name != name):
      continue
    path, overrides = _flag_value(argv, name), _overrides(argv, name)
    if path is None or not overrides:
      continue
    config = flag.parser.parse(path)  # it loaded before the override failed
    problems += [unknown_key_message(config, key, given)
                 for key, given in overrides.items()
                 if not has_key(config, key)]
  return "; ".join(problems) or None


def _exit_with_flags_error(message: str) -> None:
  """Ends the process as absl does for a flag it cannot parse (status 1)."""
  if "\n" in message:
    sys.stderr.write(
        f"FATAL Flags parsing error:\n{textwrap.indent(message, '  ')}\n")
  else:
    sys.stderr.write(f"FATAL Flags parsing error: {message}\n")
  sys.stderr.write("Pass --helpshort or --helpfull to see help on flags.\n")
  sys.exit(1)


def parse_flags(argv: Sequence[str],
                flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing (`app.parse_flags_with_usage`), with a config file
  found by path or by name (`launch.config_files`) and an unknown config key
  refused in one line naming it and the closest valid keys."""
  try:
    argv = config_files.resolve_argv(argv, flag_values)
    return flag_values(argv)
  except (config_files.ConfigNotFound, flags.Error) as error:
    message = str(error)
  except (AttributeError, KeyError, TypeError):
    message = unknown_keys_message(argv, flag_values)
    if message is None:
      raise
  _exit_with_flags_error(message)


def dataset_message(error: BaseException) -> str | None:
  """What to tell about a dataset a run cannot read (`error` or what caused
  it: an evaluation names the config key it came from); None for others."""
  from data_builders import prepare  # pylint: disable=g-import-not-at-top
  from rsjax.data import field_layout  # pylint: disable=g-import-not-at-top
  from rsjax.data import tfds_builder  # pylint: disable=g-import-not-at-top
  cause = error
  while cause is not None and not isinstance(
      cause, (tfds_builder.DatasetNotBuilt, tfds_builder.MissingSplit,
              tfds_builder.TooFewExamples, field_layout.MissingBands,
              field_layout.DatasetMismatch)):
    cause = cause.__cause__
  if isinstance(cause, tfds_builder.DatasetNotBuilt):
    return (f"{error}\nBuild it with:\n  "
            f"{prepare.build_command(cause.name, cause.data_dir)}")
  return None if cause is None else str(error)


def reporting_dataset_errors(main: Callable) -> Callable:
  """`main`, returning 1 after logging `dataset_message` for the errors it
  describes (other errors pass)."""

  @functools.wraps(main)
  def reporting(argv):
    try:
      return main(argv)
    except (OSError, KeyError, ValueError) as error:
      message = dataset_message(error)
      if message is None:
        raise
      logging.error("%s", message)
      return 1
  return reporting


def with_console(main: Callable) -> Callable:
  """`main`, after `rsjax.console.setup` at absl's --verbosity (0: the
  project's own lines, short, library chatter filtered; 1: every library's
  INFO lines; 2: DEBUG)."""

  @functools.wraps(main)
  def configured(argv):
    console.setup(flags.FLAGS.verbosity)
    return main(argv)
  return configured


def run(main: Callable) -> None:
  """`app.run(main)` in this module's error style (see the docstring), with
  the console's lines (`with_console`)."""
  app.run(with_console(reporting_dataset_errors(main)),
          flags_parser=parse_flags)
