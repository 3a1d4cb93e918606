"""RS-SPADE and pix2pix: the paired conditional GAN (`config.system = 'paired_gan'`).

Wang & Zhou's RS-SPADE (multi-source semantic image synthesis, Sec. 3) and
its pix2pix baseline (Isola et al. 2017) share one system, `system.PairedGAN`:
the pix2pix recipe (`rsjax.systems.pix2pix_recipe`) on a generator chosen by
`config.model.generator` ('rs_spade', 'unet', 'spade', ...).
"""
