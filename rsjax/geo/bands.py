"""What the source rasters hold: each sensor's bands in file order, their scale,
and the value tables of label rasters.

These are facts about files (a scene folder's GeoTIFFs, the synthetic world's
output), so they live on the geo floor: `rsjax.geo.scene` reads by them, the
synthetic world writes by them, and the field declaration
(`rsjax.data.fields`) names the bands and classes of its fields with them.

  S2_BANDS              Sentinel-2 bands of an optical raster: B2, B3, B4, B8.
  S2_DN_PER_REFLECTANCE Sentinel-2 L1C / L2A digital numbers per unit of
                        reflectance (10000); `S2_REFLECTANCE_PER_DN` its
                        inverse (1e-4, exactly the float 1e-4).
  S1_BANDS              Sentinel-1 polarizations of a SAR raster: VV, VH.
  TERRAIN_BANDS         what the scene reader derives from a one-band DEM, in
                        order: elevation (m), slope (deg), aspect (deg
                        clockwise from north), hillshade ([0, 1]).
  DYNAMIC_WORLD_CLASSES Dynamic World v1 land-cover classes, in label order.
  CLOUD_MASK_CLASSES    values of a cloud mask: 0 clear, 1 cloud, 2 shadow.
"""

from __future__ import annotations

S2_BANDS = ("B2", "B3", "B4", "B8")
S2_DN_PER_REFLECTANCE = 10_000
S2_REFLECTANCE_PER_DN = 1 / S2_DN_PER_REFLECTANCE
S1_BANDS = ("VV", "VH")
TERRAIN_BANDS = ("elevation", "slope", "aspect", "hillshade")
DYNAMIC_WORLD_CLASSES = ("water", "trees", "grass", "flooded_vegetation",
                         "crops", "shrub_and_scrub", "built", "bare",
                         "snow_and_ice")
CLOUD_MASK_CLASSES = ("clear", "cloud", "shadow")
