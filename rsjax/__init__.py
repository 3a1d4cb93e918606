"""rsjax: multi-source remote-sensing image generation, fusion and segmentation in JAX/Flax.

The house plan is docs/ARCHITECTURE.md; the floors, lowest first (imports only
point down): `rsjax.store`, `rsjax.mesh` and `rsjax.console` (atomic files,
checkpoints, the device mesh, console lines and progress), `rsjax.geo`
(rasters to tiles), `rsjax.data` (fields and the input pipeline),
`rsjax.nn` / `rsjax.losses` / `rsjax.metrics`, `rsjax.systems` (one package per paper), `rsjax.train` (the sharded loop),
`rsjax.eval` (reports, full-scene inference, experiments).
"""

__version__ = "0.1.0"
