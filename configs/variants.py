"""One parser for config args: `configs/<name>.py:<arg>`, e.g. `lulc+s1,demo`.

An arg is a comma-separated list of parts (empty parts are ignored). Each
config file declares the parts it takes, once, as a `Spec`:

  Flag("demo")                        the bare word `demo`; True when given
  OneOf("sources", SUBSETS, default="s1+lulc+dem")
                                      at most one bare word of SUBSETS; with
                                      values=None any bare word that is not a
                                      flag or another group's value (checked
                                      by the code that consumes it)
  Key("arch", ARCHS, default="drib-drib")
                                      `arch=<value>`, value one of ARCHS
  Key("k", default=1, parse=int)      `k=<value>`, value parsed by `parse`

    SPEC = variants.Spec("configs/rs_spade.py",
                         variants.OneOf("sources", SUBSETS, "s1+lulc+dem"),
                         variants.Flag("demo"))
    args = SPEC.parse("lulc+s1,demo")   # args.sources == "lulc+s1", args.demo

`parse` returns an `Args` namespace with one attribute per declared part (also
readable as args["128"] where a name is not an identifier): flags are bools, a group or key not given has its default. A flag may be
repeated; a key given twice keeps the last value; a group given twice is an
error. Every error is a ValueError in one format, naming the config file, the
bad part, the whole arg and the valid parts:

  configs/rs_spade.py: unknown variant 's2' in arg 's2,demo'; valid parts,
  comma-separated: one of s1, lulc, ... (default s1+lulc+dem); demo

Configs are data: this module imports nothing from rsjax.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Flag:
  """A bare word; its attribute is True when the word is given."""
  name: str

  def usage(self) -> str:
    return self.name


@dataclasses.dataclass(frozen=True)
class OneOf:
  """At most one bare word of `values` (None: any word that no other part
  claims); its attribute is that word, or `default`."""
  name: str
  values: Sequence[str] | None
  default: Any = None

  def usage(self) -> str:
    if self.values is None:
      return f"<{self.name}> (any name; default {self.default})"
    default = ("none" if self.default is None
               else f"default {self.default}")
    return f"one of {', '.join(self.values)} ({self.name}; {default})"


@dataclasses.dataclass(frozen=True)
class Key:
  """`name=<value>`: value one of `values`, or any string turned into the
  attribute by `parse` (a ValueError or TypeError from it is a bad value)."""
  name: str
  values: Sequence[str] | None = None
  default: Any = None
  parse: Callable[[str], Any] = str

  def usage(self) -> str:
    if self.values is not None:
      value = f"one of {', '.join(self.values)}"
    else:
      value = getattr(self.parse, "__name__", "value")
    return f"{self.name}=<{value}> (default {self.default})"


Part = Flag | OneOf | Key


class Args(types.SimpleNamespace):
  """A parsed arg: `args.demo` or `args["demo"]`."""

  def __getitem__(self, name: str) -> Any:
    return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class Spec:
  """The parts that `config` (the file, named in errors) accepts."""
  config: str
  parts: tuple[Part, ...]

  def __init__(self, config: str, *parts: Part):
    object.__setattr__(self, "config", config)
    object.__setattr__(self, "parts", tuple(parts))
    names = [p.name for p in self.parts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
      raise ValueError(f"{config}: parts {duplicates} declared twice")
    words = [p.name for p in self.parts if isinstance(p, Flag)] + [
        v for p in self.parts if isinstance(p, OneOf) and p.values
        for v in p.values]
    clashes = sorted({w for w in words if words.count(w) > 1})
    if clashes:
      raise ValueError(f"{config}: words {clashes} belong to two parts")
    if sum(isinstance(p, OneOf) and p.values is None for p in self.parts) > 1:
      raise ValueError(f"{config}: at most one OneOf may take any name")

  def renamed(self, config: str) -> Spec:
    """The same parts, errors naming another config file."""
    return Spec(config, *self.parts)

  def usage(self) -> str:
    return "; ".join(p.usage() for p in self.parts)

  def error(self, problem: str, arg: str | None) -> ValueError:
    return ValueError(f"{self.config}: {problem} in arg {arg!r}; valid parts, "
                      f"comma-separated: {self.usage()}")

  def _part_of_word(self, word: str) -> Flag | OneOf | None:
    for part in self.parts:
      if isinstance(part, Flag) and part.name == word:
        return part
      if isinstance(part, OneOf) and part.values and word in part.values:
        return part
    return next((p for p in self.parts
                 if isinstance(p, OneOf) and p.values is None), None)

  def parse(self, arg: str | None) -> Args:
    """The parsed arg (None or '' gives every default)."""
    values: dict[str, Any] = {}
    for word in (w for w in (arg or "").split(",") if w):
      name, is_key, value = word.partition("=")
      if is_key:
        key = next((p for p in self.parts
                    if isinstance(p, Key) and p.name == name), None)
        if key is None:
          raise self.error(f"unknown variant {word!r}", arg)
        values[name] = self._key_value(key, value, arg)
        continue
      part = self._part_of_word(word)
      if part is None:
        raise self.error(f"unknown variant {word!r}", arg)
      if isinstance(part, Flag):
        values[part.name] = True
      elif part.name in values:
        raise self.error(f"more than one {part.name}: "
                         f"{values[part.name]!r} and {word!r}", arg)
      else:
        values[part.name] = word
    return Args(**{
        p.name: values.get(p.name, False if isinstance(p, Flag) else p.default)
        for p in self.parts})

  def _key_value(self, key: Key, value: str, arg: str | None) -> Any:
    if key.values is not None:
      if value not in key.values:
        raise self.error(f"bad {key.name}={value!r}", arg)
      return value
    try:
      return key.parse(value)
    except (TypeError, ValueError):
      raise self.error(f"bad {key.name}={value!r}", arg) from None
