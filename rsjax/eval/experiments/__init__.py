"""Experiments built from several runs: the augmentation experiment of the
RS-SPADE and CSEBGAN papers (`augmentation`, on arrays of generated tiles
written by `generated`) and the fusion study of the segmenters
(`fusion_study`), with their tables and plots."""
