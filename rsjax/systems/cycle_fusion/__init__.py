"""The deep residual cycle GAN for spatio-temporal-spectral fusion
(`config.system = 'cycle_fusion'`).

Jiang, Shen & Li, "Deep-learning-based spatio-temporal-spectral integrated
fusion of heterogeneous remote sensing images", TGRS 2022: the system
(`system.CycleFusion`: two generators, two discriminators, cycle loss), what
it observes (`observations`), the fixed resize branch of its cycle
(`resize_branch`) and the quality indices of the paper's tables (`scores`).
"""
