"""LULC segmentation (`config.system = 'segmentation'`): RS-UNet or a two-branch
optical+SAR fusion segmenter (`system.Segmentation`), the downstream
experiment of the RS-SPADE paper and the segmenter CSEBGAN's conductor and
evaluation use. The fusion zoo itself (networks) is `rsjax.nn.fusion`.
"""
