"""Image files read as the picture a person sees: complete files only (a half-copied JPEG or PNG
is refused, not decoded half grey), turned by their EXIF orientation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def truncated(data: bytes) -> str | None:
    """Why ``data`` is a JPEG or PNG cut short (its end marker missing), or None."""
    tail = data[-64:].rstrip(b"\x00")
    if data.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if data.startswith(b"\x89PNG") and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def read_image(path: Path) -> np.ndarray | None:
    """BGR pixels of an image file, or ``None`` when it is unreadable, empty, truncated or not
    an image OpenCV decodes."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data or truncated(data):
        return None
    # IMREAD_COLOR applies the EXIF orientation: the picture as shown, as prep stores it
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
