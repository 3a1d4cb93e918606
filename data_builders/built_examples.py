"""Test helper for the public builders' pixel tests: build a builder from its
manual fixture and read back every stored example."""

from __future__ import annotations

from collections.abc import Iterator

SPLITS = ("train", "validation", "test")


def built_examples(builder, manual_dir) -> Iterator[dict]:
  """Builds `builder` from `manual_dir` and yields every stored example of
  every split as numpy values."""
  import tensorflow_datasets as tfds
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  for split in SPLITS:
    yield from tfds.as_numpy(builder.as_dataset(split=split))


def tiles_by_position(builder, manual_dir, tile: int) -> dict[tuple, dict]:
  """`built_examples` keyed by (image_id, row_off, col_off); each position
  is stored once, and tile_row/tile_col agree with the offsets."""
  stored = {}
  for example in built_examples(builder, manual_dir):
    key = (example["image_id"].decode(), int(example["row_off"]),
           int(example["col_off"]))
    assert key not in stored, f"tile {key} stored twice"
    assert (int(example["tile_row"]) * tile,
            int(example["tile_col"]) * tile) == key[1:], key
    stored[key] = example
  return stored
