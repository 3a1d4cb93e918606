"""Metrics the papers report: image quality (PSNR, SSIM, SAM, ERGAS, Q) and
segmentation scores (PA, MPA, IoU, mIoU, FWIoU), generative scores (Frechet
distance, LPIPS-style diversity, mCSD / mOCD), jit-compatible and batched."""

from rsjax.metrics import generative
from rsjax.metrics.image import ergas, psnr, q_index, sam, ssim
from rsjax.metrics.segmentation import confusion_matrix, segmentation_scores

__all__ = [
    "confusion_matrix",
    "ergas",
    "generative",
    "psnr",
    "q_index",
    "sam",
    "segmentation_scores",
    "ssim",
]
