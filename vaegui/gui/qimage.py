"""numpy image -> QImage, for the image views and the latent map's overlay."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_qimage(image: np.ndarray) -> QImage:
    """(C, H, W) image, uint8 or float in [0, 1], C = 1 or 3 -> a QImage that owns its pixels."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    channels, height, width = image.shape
    if channels == 1:
        pixels = np.ascontiguousarray(image[0])
        fmt, line = QImage.Format.Format_Grayscale8, width
    else:
        pixels = np.ascontiguousarray(image[:3].transpose(1, 2, 0))  # (H, W, 3)
        fmt, line = QImage.Format.Format_RGB888, 3 * width
    # QImage only borrows the buffer; copy() detaches it before `pixels` is freed.
    return QImage(pixels.data, width, height, line, fmt).copy()
