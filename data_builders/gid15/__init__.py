"""TFDS builder `gid15` (see gid15_dataset_builder.py)."""
