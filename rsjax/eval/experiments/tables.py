"""Result tables of experiments as Markdown, CSV and JSON, written atomically.

A table is a list of columns and a list of row dicts; every file is written
to a temporary name and renamed, so a killed experiment never leaves a
half-written table that looks finished.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from rsjax.store import atomic


def _cell(value: Any, digits: int) -> str:
  if isinstance(value, float):
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"
  return str(value)


def markdown(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *,
             title: str = "", notes: Sequence[str] = (), digits: int = 4
             ) -> str:
  lines = [f"# {title}", ""] if title else []
  lines.append("| " + " | ".join(columns) + " |")
  lines.append("|" + "|".join("---" for _ in columns) + "|")
  for row in rows:
    lines.append("| " + " | ".join(_cell(row.get(c, ""), digits)
                                   for c in columns) + " |")
  if notes:
    lines += [""] + list(notes)
  return "\n".join(lines) + "\n"


def csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(columns),
                          extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow(row)
  return buffer.getvalue()


def _json_safe(value):
  if isinstance(value, float) and not math.isfinite(value):
    return None  # JSON has no NaN
  if isinstance(value, Mapping):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  return value


def write_table(stem: str, columns: Sequence[str],
                rows: Sequence[Mapping[str, Any]], *, title: str = "",
                notes: Sequence[str] = (), extra: Mapping[str, Any] | None = None
                ) -> dict[str, str]:
  """Writes `<stem>.md`, `<stem>.csv` and `<stem>.json` (rows + `extra`);
  returns their paths by kind."""
  paths = {kind: f"{stem}.{kind}" for kind in ("md", "csv", "json")}
  atomic.write_text(paths["md"], markdown(columns, rows, title=title, notes=notes))
  atomic.write_text(paths["csv"], csv_text(columns, rows))
  document = {"title": title, "columns": list(columns), "rows": list(rows),
              "notes": list(notes), **(extra or {})}
  atomic.write_json(paths["json"], _json_safe(document))
  return paths
