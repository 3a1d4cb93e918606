"""Rasters to training tiles: read, align, derive and tile georeferenced scenes.

The modules, one idea each (import the one you need, this package imports none):

  bands     what source rasters hold: sensor bands in file order, DN scale,
            class tables (Dynamic World, cloud mask).
  io        open GeoTIFFs with clear errors, windowed reads with a validity mask.
  align     the reference grid (CRS, transform, size) and resampling of every
            source onto windows of it with `rasterio.warp.reproject`.
  terrain   slope, aspect and hillshade (Horn's 3x3 method, gdaldem's formulas).
  coarse_terrain  terrain at the DEM's own resolution (RS-SPADE: 30 m),
            resampled bilinearly onto the finer grid.
  sar       Sentinel-1 sigma0 in linear units <-> dB, clipping and normalization.
  tiles     grid tiling, nodata filtering and spatially blocked splits.
  scene     the one reader of a scene folder: find its sources, align them
            on one grid, read windows in physical units (SAR dB, terrain).
  units     the units each source file is declared in (S2 DN or reflectance,
            S1 dB or linear, class codes, metres) and the check of a file's
            values against them, with an error naming file, band and fix.
  clouds    synthetic cloud masks and cloudy optical images, in JAX.
  synthetic a multi-source synthetic world written as real GeoTIFFs.
"""
