"""TFDS builder `sen12ms_cr` (see sen12ms_cr_dataset_builder.py)."""
