"""rsjax: multi-source remote-sensing image generation, fusion and segmentation in JAX/Flax.

The package map is in DESIGN.md of the project: `rsjax.metrics` (image quality and
segmentation scores), `rsjax.geo` (rasters to tiles), `rsjax.data` (input pipeline),
`rsjax.nn` (Flax modules), `rsjax.systems` and `rsjax.train` (sharded training),
`rsjax.eval` (tables, experiments, full-scene inference).
"""

__version__ = "0.1.0"
