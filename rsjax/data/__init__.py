"""The input pipeline: TFDS or in-memory examples -> normalized, augmented,
globally sharded batches (see pipeline.py). Importing this package does not
import TensorFlow.

  fields         the one declaration of every field: kind, bands, units,
                 storage dtype, normalization source, display.
  normalize      per-source mapping to [-1, 1] and its inverses.
  augment        consistent dihedral augmentation of a sharded batch, in JAX.
  readers        which examples each process reads at each step (resume).
  memory_source  random in-memory examples (benchmarks, no TensorFlow).
  tfds_builder   the TFDS dataset a config names, with errors naming what is
                 not built or too small.
  pipeline       config + mesh -> prefetched global jax.Array batches.
"""

from rsjax.data.pipeline import create_iterator, default_config

__all__ = ["create_iterator", "default_config"]
