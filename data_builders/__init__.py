"""TFDS builders, one folder per dataset layout (`tfds new` layout)."""
