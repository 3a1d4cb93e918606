"""CSEBGAN (`config.system = 'csebgan'`): semantic image synthesis with Semantic
Embeddings and a conductor.

Wang, Chen, Zou, Shi, "Remote Sensing Image Synthesis via Semantic Embedding
Generative Adversarial Networks": the system (`system.CSEBGAN`: SENet
generator, multi-scale PatchGAN, U-Net conductor, tripartite training), the
land-cover mask it is conditioned on (`mask`), its evaluation of fidelity
and diversity (`evaluation`) and the frozen networks it loads from files
(`frozen`: VGG19, a trained segmentation run as conductor or evaluator).
"""
