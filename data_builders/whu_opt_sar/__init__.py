"""TFDS builder `whu_opt_sar` (see whu_opt_sar_dataset_builder.py)."""
