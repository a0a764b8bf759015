"""Near-duplicate images by perceptual hash (64-bit DCT pHash, Hamming distance).

Resizing, re-encoding, a stretch to a square or a small colour change leave the hash within a few
bits; different photos differ in about half of them. Used by ``prep.mix`` so that one picture
never sits in train and in eval, even when two datasets ship it under different names.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

HASH_BITS = 64


def phash(data: bytes) -> np.uint64 | None:
    """The 64-bit DCT perceptual hash of an encoded image, or ``None`` if it does not decode."""
    buffer = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_REDUCED_GRAYSCALE_4)
    except cv2.error:  # OpenCV's reduced decode fails on images a few pixels wide
        image = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None
    return phash_gray(image)


def phash_gray(image: np.ndarray) -> np.uint64:
    """The hash of grey pixels (``H x W``, uint8), e.g. a video frame's."""
    small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])  # the DC term is the mean brightness: left out of the median
    return np.packbits(bits).view(">u8")[0].astype(np.uint64)


def near_pairs(hashes: Sequence[np.uint64], distance: int, chunk: int = 1024) -> list[tuple]:
    """Every pair ``(i, j, bits)`` with ``i < j`` whose hashes differ in at most ``distance``
    bits."""
    h = np.asarray(hashes, np.uint64)
    pairs = []
    for start in range(0, len(h), chunk):
        block = h[start : start + chunk]
        bits = np.bitwise_count(block[:, None] ^ h[None, :])
        for a, j in zip(*np.nonzero(bits <= distance), strict=True):
            i = start + int(a)
            if i < j:
                pairs.append((i, int(j), int(bits[a, j])))
    return pairs
