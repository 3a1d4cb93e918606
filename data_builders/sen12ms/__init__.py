"""TFDS builder `sen12ms` (see sen12ms_dataset_builder.py)."""
