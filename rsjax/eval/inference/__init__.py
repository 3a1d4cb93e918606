"""Full-scene inference: a trained run as one jitted function on windows
(`predictor`), overlapping windows blended with weights (`windows`), streamed
into a Cloud-Optimized GeoTIFF (`cog_writer`); `full_scene` drives them over a
scene folder read with `rsjax.geo.scene`, after checking the grid against the
one the run was trained on (`training_grid`, `grid_checks`) and that inputs
and output hold data (`nodata_checks`)."""
