"""Write a small EgoHands-shaped tree: real JPEG frames, ``polygons.mat`` per video and a root
``metadata.mat`` in the documented structure, with the edge cases the real data has.

    python -m prep.fixtures --out data/fixture-egohands
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import scipy.io

HAND_TYPES = ("myleft", "myright", "yourleft", "yourright")
DEFAULT_VIDEOS = ("CARDS_COURTYARD_B_T", "CHESS_OFFICE_S_H", "PUZZLE_LIVINGROOM_T_B")
_EMPTY = np.zeros((0, 0))


def hand_polygon(
    rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 24
) -> np.ndarray:
    """A hand-like blob: a star-shaped polygon with finger bumps, ``(n, 2)`` x,y floats."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = r * (1 + 0.25 * np.sin(5 * t + rng.uniform(0, 6)) + 0.05 * rng.standard_normal(n))
    return np.stack([cx + radius * np.cos(t), cy + 0.8 * radius * np.sin(t)], 1)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    small = rng.integers(40, 200, (9, 16, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 8, (h, w, 3))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_frame(
    rng: np.random.Generator, w: int, h: int, case: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One BGR frame and its polygons. ``case`` picks an edge case: normal, border (a hand runs
    past the left/top edge), degenerate (a 2-point polygon), nan (a NaN point), empty (no hand)."""
    img = _background(rng, w, h)
    hands: dict[str, np.ndarray] = dict.fromkeys(HAND_TYPES, _EMPTY)
    if case == "empty":
        return img, hands
    present = [ht for ht in HAND_TYPES if rng.random() < 0.6] or ["myright"]
    for ht in present:
        r = rng.uniform(0.06, 0.12) * h * 1.8
        cx = rng.uniform(r, w - r)
        cy = rng.uniform(h * 0.45, h - r) if ht.startswith("my") else rng.uniform(r, h * 0.55)
        hands[ht] = hand_polygon(rng, cx, cy, r)
    if case == "border":
        hands["myleft"] = hand_polygon(rng, 0.02 * w, 0.05 * h, 0.12 * h)  # past left and top
    elif case == "degenerate":
        hands["yourleft"] = np.array([[10.0, 10.0], [40.0, 40.0]])
    elif case == "nan":
        poly = hand_polygon(rng, w * 0.5, h * 0.5, 0.1 * h)
        poly[3] = np.nan
        hands["yourright"] = poly
    skin = (int(rng.integers(90, 140)), int(rng.integers(130, 170)), int(rng.integers(190, 235)))
    for poly in hands.values():
        pts = poly[np.isfinite(poly).all(1)] if poly.size else poly
        if len(pts) >= 3:
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], skin, cv2.LINE_AA)
    return img, hands


def _struct_array(records: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    arr = np.zeros((1, len(records)), dtype=[(f, object) for f in fields])
    for i, rec in enumerate(records):
        for f in fields:
            arr[0, i][f] = rec[f]
    return arr


def write_egohands(
    out: Path,
    videos=DEFAULT_VIDEOS,
    frames_per_video: int = 8,
    size: tuple[int, int] = (1280, 720),
    seed: int = 0,
    metadata: bool = True,
    cases: dict[tuple[str, int], str] | None = None,
) -> dict:
    """Write ``out/_LABELLED_SAMPLES/<VIDEO>/{frame_NNNN.jpg, polygons.mat}`` and
    ``out/metadata.mat``. Returns ``{video: [(frame_num, file, {hand_type: polygon})]}``.

    ``cases`` maps (video index, frame index) to an edge case; by default the first video has a
    border hand, a degenerate polygon, a NaN point and an empty frame.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    w, h = size
    if cases is None:
        cases = {(0, 1): "border", (0, 2): "degenerate", (0, 3): "nan", (0, 4): "empty"}
    truth: dict[str, list] = {}
    meta_records = []
    for vi, name in enumerate(videos):
        folder = out / "_LABELLED_SAMPLES" / name
        folder.mkdir(parents=True, exist_ok=True)
        nums = sorted(rng.choice(np.arange(1, 2000), frames_per_video, replace=False).tolist())
        frames, poly_records = [], []
        for fi, num in enumerate(nums):
            img, hands = make_frame(rng, w, h, cases.get((vi, fi), "normal"))
            path = folder / f"frame_{num:04d}.jpg"
            cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            frames.append((num, path, hands))
            poly_records.append(dict(hands))
        scipy.io.savemat(
            folder / "polygons.mat", {"polygons": _struct_array(poly_records, HAND_TYPES)}
        )
        truth[name] = frames
        activity, location, viewer, partner = name.split("_")
        meta_records.append(
            {
                "video_id": name,
                "partner_video_id": f"{activity}_{location}_{partner}_{viewer}",
                "ego_viewer_id": viewer,
                "partner_id": partner,
                "location_id": location,
                "activity_id": activity,
                "labelled_frames": _struct_array(
                    [{"frame_num": float(n), **hands} for n, _, hands in frames],
                    ("frame_num", *HAND_TYPES),
                ),
            }
        )
    if metadata:
        fields = (
            "video_id",
            "partner_video_id",
            "ego_viewer_id",
            "partner_id",
            "location_id",
            "activity_id",
            "labelled_frames",
        )
        scipy.io.savemat(out / "metadata.mat", {"video": _struct_array(meta_records, fields)})
    return truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=8, help="frames per video")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    write_egohands(args.out, frames_per_video=args.frames, seed=args.seed)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
