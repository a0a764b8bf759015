"""COCO's run-length encoding of a mask, in pycocotools' compressed string form
(``{"size": [h, w], "counts": str}``), without pycocotools: detect's JSON ``segmentation``.

Runs are counted down the columns (Fortran order), starting with background; each run is
written as LEB128-like groups of 5 bits in printable characters, from the third run on as the
difference to the run two before (pycocotools' ``rleToString`` / ``rleFrString``).
"""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> list[int]:
    """The run lengths of a 0/1 mask down its columns, background first (maybe 0); only the
    columns holding the mask are scanned."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    used = np.flatnonzero(mask.any(axis=0))
    if not len(used):
        return [h * w]
    x0, x1 = int(used[0]), int(used[-1]) + 1
    flat = mask[:, x0:x1].ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat[0]:
        counts = [0, *counts]
    counts[0] += x0 * h  # the columns before, all background
    after = (w - x1) * h
    if after:
        if len(counts) % 2:  # the last run is background: it goes on
            counts[-1] += after
        else:
            counts.append(after)
    return counts


def encode(mask: np.ndarray) -> dict:
    """A ``(h, w)`` 0/1 mask as ``{"size": [h, w], "counts": str}``."""
    counts, chars = runs(mask), []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr(48 + (c | 0x20 if more else c)))
    h, w = np.shape(mask)
    return {"size": [int(h), int(w)], "counts": "".join(chars)}


def decode(rle: dict) -> np.ndarray:
    """The ``(h, w)`` uint8 mask of a compressed RLE; ValueError for one that is not."""
    h, w = (int(v) for v in rle["size"])
    counts, text, p = [], rle["counts"], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                raise ValueError("an RLE string cut in the middle of a run")
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise ValueError(f"RLE runs do not cover a {h}x{w} mask")
    values = np.arange(len(counts)) % 2
    flat = np.repeat(values.astype(np.uint8), counts)
    return flat.reshape((h, w), order="F")
