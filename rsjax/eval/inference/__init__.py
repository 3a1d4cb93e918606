"""Full-scene inference: a trained run as one jitted function on windows
(`predictor`), overlapping windows blended with weights (`windows`), streamed
into a Cloud-Optimized GeoTIFF (`cog_writer`); `full_scene` drives them over a
scene folder read with `rsjax.geo.scene`."""
