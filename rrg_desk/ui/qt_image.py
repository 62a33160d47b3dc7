"""numpy <-> QImage without per-pixel Python loops."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def gray_to_qimage(gray: np.ndarray) -> tuple[QImage, np.ndarray]:
    """Wrap a uint8 HxW array as a Grayscale8 QImage sharing its memory.

    The QImage does not own the bytes, so the returned (contiguous) array must be kept
    alive as long as the QImage is used; callers hold both.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a uint8 HxW array, got {gray.dtype} {gray.shape}")
    buffer = np.ascontiguousarray(gray)
    height, width = buffer.shape
    qimage = QImage(buffer.data, width, height, buffer.strides[0], QImage.Format.Format_Grayscale8)
    return qimage, buffer


def qimage_to_gray(qimage: QImage) -> np.ndarray:
    """Copy a QImage into a uint8 HxW array (luminance), e.g. to check what is displayed."""
    gray = qimage.convertToFormat(QImage.Format.Format_Grayscale8)
    height, width, stride = gray.height(), gray.width(), gray.bytesPerLine()
    raw = np.frombuffer(gray.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, :width].copy()
