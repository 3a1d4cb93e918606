"""Functional Flax (Linen) modules of the papers: generators, discriminators,
segmenters, fusion blocks and feature extractors. NHWC, any channel count."""
