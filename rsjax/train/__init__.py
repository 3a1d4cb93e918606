"""Sharded training: the device mesh and shardings, the trainer, checkpoints."""
