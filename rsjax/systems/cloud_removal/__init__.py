"""Two-GAN cloud removal (`config.system = 'cloud_removal'`).

Darbaghshahi, Mohammadi & Soryani, "Cloud removal in remote sensing images
using generative adversarial networks and SAR-to-optical image translation":
the system (`system.CloudRemoval`: a SAR-to-optical GAN, then a
cloud-removal GAN, each with the pix2pix recipe), its cloudy inputs
(`clouds`), scores (`scores`) and sample-grid panels (`panels`).
"""
