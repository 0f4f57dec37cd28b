"""Images for display, shared by the web app and the notebook widget (no UI library here)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

DISPLAY_PIXELS = 280
MIN_DISPLAY_PIXELS = 256  # an image's long side is shown at least this big
ZOOM_PIXELS = 720  # the long side of the zoomed view
_PIXEL_ART = 64  # at most this many pixels on the long side: scaled up crisp (nearest), not smoothed


def is_image_array(x: Any) -> bool:
    """A numeric 2-D array, or 3-D with 1, 3 or 4 channels first or last."""
    return isinstance(x, np.ndarray) and x.dtype.kind in "biuf" and (
        x.ndim == 2 or (x.ndim == 3 and (x.shape[-1] in (1, 3, 4) or x.shape[0] in (1, 3, 4))))


def array_to_image(arr: np.ndarray, size: int = DISPLAY_PIXELS) -> Image.Image:
    """A 2-D (grey) or 3-D (colour) array as a crisp image scaled up to about ``size`` pixels (nearest neighbour, no blur).

    Values are stretched to 0-255 over the finite values; NaN and infinities show as black.
    """
    a = np.asarray(arr, dtype=float)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scaled = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo)
    image = Image.fromarray((np.nan_to_num(np.clip(scaled, 0, 1), nan=0.0, posinf=0.0, neginf=0.0) * 255).astype(np.uint8))
    return scaled_to(image, size, crisp=True)


def scaled_to(image: Image.Image, size: int = DISPLAY_PIXELS, *, crisp: bool | None = None) -> Image.Image:
    """``image`` enlarged so its long side is at least ``size`` (never shrunk).

    ``crisp`` (default: for images of at most 64 pixels on the long side,
    such as 8x8 digits) enlarges by a whole factor with nearest-neighbour
    sampling, so each pixel stays a sharp square; otherwise (photos) the
    image is enlarged smoothly (Lanczos).
    """
    long_side = max(image.size)
    if long_side >= size or long_side == 0:
        return image
    if crisp or (crisp is None and long_side <= _PIXEL_ART):
        factor = -(-size // long_side)  # ceiling: at least `size`
        return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    scale = size / long_side
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
