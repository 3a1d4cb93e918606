"""Metrics the papers report: image quality (PSNR, SSIM, SAM, ERGAS, Q) and
segmentation scores (PA, MPA, IoU, mIoU, FWIoU), jit-compatible and batched."""

from rsjax.metrics.image import ergas, psnr, q_index, sam, ssim
from rsjax.metrics.segmentation import confusion_matrix, segmentation_scores

__all__ = [
    "confusion_matrix",
    "ergas",
    "psnr",
    "q_index",
    "sam",
    "segmentation_scores",
    "ssim",
]
