"""TFDS builder `sen1_2` (see sen1_2_dataset_builder.py)."""
