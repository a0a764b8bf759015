"""The landmark stage's table: its cost, detect's speed with it, keypoints and left/right against
MediaPipe Hands, and how steady the ids are.

    python -m detect.hands_bench [--rounds 20] [--frames 150] [--images 30] [--skip mediapipe]

- ms per hand, LiteRT, 1 thread: the landmark models' invoke, interleaved round by round with
  our detector's network and MediaPipe's palm detector (5 invokes a turn, 2 warm-up rounds
  dropped; medians and IQR); and the whole stage per hand on real frames (crops, one or two
  passes, fusion);
- detect_multi_threaded FPS on three 1280x720 videos, JSON written, 2 workers: the
  EgoHands labelled frames one after the other (detect.bench's video; each frame is another
  moment, so tracking finds its hands gone and looks again), and the moving-hands clip with 2
  and with 4 hands (a video's continuity); modes: boxes only, --landmarks --no-track (every
  frame on its own), --landmarks --track (video mode, the default for a video: the crops
  follow the hands, the detector paced by how well they hold; the landmark file the runtime
  picks here), the same on the float lite file, the same with --max-hands 2 (the detector
  rests while 2 hands hold; on the 4-hand clip it follows 2 of them), the same with
  --detect-every 20 (it looks for new hands every 20th frame, not 10th), --no-landmarks --track
  (ByteTrack), and boxes only and video mode on the float files an AVX2-only CPU runs (against
  each other), as separate processes, and MediaPipe Hands (video mode, lite, up to 4 hands) on
  the same file in its own process, decoding included, interleaved round by round (one warm-up
  round dropped);
- ms a frame in an app: ``HandDetector``'s ``detect`` (boxes only, on 1 and 2 interpreter
  threads; the stage) and ``detect_for_video`` (on one crop thread; the default) called frame
  after frame on the moving clip (2 and 4 hands, at most 150 frames) from memory, interleaved
  the same way;
- keypoints against MediaPipe Hands' own pipeline (in MediaPipe's environment) on held-out
  frames of every shared source, on the lite file and its int8 one, where both find the hand
  (box IoU >= 0.5): PCK@0.1 (a keypoint within 0.1 of the hand's size, the longer side of
  MediaPipe's keypoint box) and handedness agreement;
- ids on a clip of held-out webcam hands moving over a real background (prep.samples), and on
  the same clip with a card over one hand 10 frames in 30: id switches per 100 frames, and
  the share of hand-frames found;
- left/right along tracks on that clip (2 and 4 hands) and on each EgoHands video's labelled
  frames in order: label changes per 100 hand-frames and the share of pair frames (two hands
  of about one size) whose hands share a label, the model's label each frame against the
  steadied one (``handspot.handedness``).

Accuracy per source (AP50, AP, false detections per face image, with and without the stage,
against MediaPipe Hands and handtrack.js) is ``pipelines.compare --rows
tflite_raw,landmarks,mediapipe_hands,handtrack``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.paths import DEFAULT_MODEL
from handspot.detections import box_iou
from handspot.errors import UserError, fail
from handspot.sources import schedule
from prep.samples import DEFAULT_SAMPLE, HELD_OUT_VIDEO, WEBCAM, WEBCAM_SETS

VIDEOS = (
    "EgoHands frames (a new moment each frame)",
    "moving clip, 2 hands (continuous)",
    "moving clip, 4 hands (continuous)",
)
MEDIAPIPE = "MediaPipe Hands (video mode, lite, up to 4 hands)"
FLOAT_BOXES = "boxes, float files (an AVX2-only CPU's pick)"
FLOAT_VIDEO = "landmarks + track, float files"
FLOATS = (FLOAT_BOXES, FLOAT_VIDEO)  # against boxes on the float files
FLOAT_FILES = ["--backend", "tflite_raw_fp32", "--landmark-model", "lite"]
API_VIDEO = "detect_for_video (the default)"
API_MODES = {  # HandDetectorOptions fields, and whether detect_for_video is called
    "detect, boxes only": ({"landmarks": False}, False),
    "detect, boxes only, 2 interpreter threads": ({"landmarks": False, "threads": 2}, False),
    "detect, the stage (each frame on its own)": ({}, False),
    "detect_for_video, 1 crop thread": ({"crop_threads": 1}, True),
    API_VIDEO: ({}, True),
}
MODES = {
    "boxes": ["--no-landmarks", "--no-track"],
    "landmarks": ["--landmarks", "--no-track"],
    "landmarks + track (video; the default)": ["--landmarks", "--track"],
    "landmarks lite (float) + track": ["--landmarks", "--track", "--landmark-model", "lite"],
    "landmarks + track, --max-hands 2": ["--landmarks", "--track", "--max-hands", "2"],
    "landmarks + track, --detect-every 20": ["--landmarks", "--track", "--detect-every", "20"],
    "track (ByteTrack)": ["--no-landmarks", "--track"],
    # what the runtime picks on a CPU without VNNI (AVX2 only; python -m detect.avx2_count):
    # the float detector and the float landmark file, each mode against boxes on those files
    FLOAT_BOXES: ["--no-landmarks", "--no-track", *FLOAT_FILES],
    FLOAT_VIDEO: ["--landmarks", "--track", *FLOAT_FILES],
}


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = statistics.quantiles(xs, n=4) if len(xs) > 1 else (xs[0],) * 3
    return med, q1, q3


def invoke_ms(model: Path, rounds: int) -> dict[str, tuple[float, float, float]]:
    """The models' invokes, interleaved (detect.sizes' harness)."""
    from detect.bench import palm_model
    from detect.sizes import latencies
    from handspot.assets import LANDMARK_MODELS, landmark_model

    paths = {"our detector's network (int8)": model / "litert" / "model_int8.tflite"}
    for variant in LANDMARK_MODELS:
        paths[f"landmarks {variant}"] = landmark_model(variant)
    if palm := palm_model():
        paths["MediaPipe palm_detection_full"] = palm
    return latencies(paths, rounds)


def stage_ms(model: Path, images: list[np.ndarray]) -> dict[str, float]:
    """The whole stage per hand on real frames, each landmark model: ms, and the share of
    hands given a second, turned crop."""
    import math
    import time

    from handspot.assets import LANDMARK_MODELS
    from handspot.landmarks import LandmarkModel, LandmarkOptions, Roi
    from pipelines.backends import load_detector

    detector = load_detector(model, "tflite_raw", score_threshold=0.5)
    boxes = [(im, b) for im in images for b in detector.detect(im).boxes]
    out = {}
    for variant in LANDMARK_MODELS:
        lm, options = LandmarkModel(variant), LandmarkOptions(model=variant)
        for im, b in boxes[:3]:
            lm.refine(im, b, options)  # warm-up
        t0, turned = time.perf_counter(), 0
        for im, b in boxes:
            hand = lm.run(im, Roi.from_box(b, options.box_scale))
            if hand.presence >= options.presence:
                roi = Roi.from_keypoints(hand.keypoints)
                if abs(math.degrees(roi.angle)) >= options.turn:
                    lm.run(im, roi)
                    turned += 1
        out[variant] = (1000 * (time.perf_counter() - t0) / max(len(boxes), 1), turned / len(boxes))
    out["hands"] = len(boxes)
    return out


def detect_fps(model: Path, videos: dict[str, Path], rounds: int, work: Path,
               mediapipe: bool = True) -> dict:  # fmt: skip
    """``{video: {mode: [fps, ...]}}``, every video and mode (and MediaPipe Hands on the same
    video, in its own process) interleaved round by round, the first round dropped."""
    worker = hands_worker() if mediapipe else None
    modes = [*MODES, *([MEDIAPIPE] if worker else [])]
    runs = [(v, m) for v in videos for m in modes]
    fps: dict[str, dict[str, list[float]]] = {v: {m: [] for m in modes} for v in videos}
    try:
        for r in tqdm(range(rounds + 1), desc="detect rounds", leave=False):
            for k in range(len(runs)):
                video, mode = runs[(r + k) % len(runs)]
                if mode == MEDIAPIPE:
                    done = worker.call("hands_video", path=str(videos[video]), max_hands=4,
                                       complexity=0, min_confidence=0.5)  # fmt: skip
                    rate = done["frames"] / done["seconds"]
                else:
                    rate = detect_rate(model, videos[video], MODES[mode], work)
                if r:
                    fps[video][mode].append(rate)
    finally:
        if worker is not None:
            worker.close()
    return fps


def detect_rate(model: Path, video: Path, flags: list[str], work: Path) -> float:
    """detect_multi_threaded's FPS on ``video`` with ``flags``, the JSON lines written."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "detect" / "detect_multi_threaded.py"),
         "--source", str(video), "--model", str(model), "--num-workers", "2",
         "--json", str(work / "o.jsonl"), *flags],
        capture_output=True, text=True, cwd=root,
    )  # fmt: skip
    found = re.search(r"\(([\d.]+) FPS\)", result.stdout)
    if result.returncode != 0 or not found:
        raise UserError(f"detect {' '.join(flags)}: {result.stderr.strip()[-300:]}")
    return float(found[1])


def api_ms(model: Path, frames: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """``{clip: {mode: [ms a frame, ...]}}``: ``HandDetector`` as an app calls it, one frame
    after the other from memory, on the moving clip with 2 and with 4 hands; each mode takes a
    turn over the whole clip with a fresh detector (video mode starts with no hand; its first
    frame, which loads its models, is not counted), round by round, the first round dropped."""
    import handspot
    from prep.samples import moving_hands_clip

    out: dict[str, dict[str, list[float]]] = {}
    for video, hands in zip(VIDEOS[1:], (2, 4), strict=True):
        clip = moving_hands_clip(frames=frames, hands=hands)
        if clip is None:
            raise UserError("the shared data (EgoHands sample, webcam sets) is needed for the clip")
        out[video] = {mode: [] for mode in API_MODES}
        for r in tqdm(range(rounds + 1), desc=f"api rounds, {hands} hands", leave=False):
            for k in range(len(API_MODES)):
                mode = list(API_MODES)[(r + k) % len(API_MODES)]
                fields, video_mode = API_MODES[mode]
                options = handspot.HandDetectorOptions(model=str(model), **fields)
                with handspot.HandDetector(options) as detector:
                    ms = _ms_a_frame(detector, clip[0], video_mode)
                if r:
                    out[video][mode].append(ms)
    return out


def _ms_a_frame(detector, pictures: list[np.ndarray], video_mode: bool) -> float:
    """The mean ms a call over the frames after the first (of the one frame, if one)."""
    start = time.perf_counter()
    for t, rgb in enumerate(pictures):
        if t == 1:
            start = time.perf_counter()
        if video_mode:
            detector.detect_for_video(rgb, 33 * t)
        else:
            detector.detect(rgb)
    return (time.perf_counter() - start) * 1000 / max(1, len(pictures) - 1)


def hands_worker():
    """MediaPipe's worker process, or None where its environment cannot be made."""
    from pipelines.mediapipe_env import Worker

    try:
        return Worker()
    except UserError as e:
        print(f"warning: MediaPipe Hands left out: {e}", file=sys.stderr)
        return None


def write_clip(path: Path, frames: int, hands: int = 2) -> Path | None:
    """The moving-hands clip (prep.samples) as an mp4, or None without the shared data."""
    from detect.bench import write_mp4
    from prep.samples import moving_hands_clip

    clip = moving_hands_clip(frames=frames, hands=hands)
    if clip is None:
        return None
    return write_mp4(path, (np.ascontiguousarray(rgb[..., ::-1]) for rgb in clip[0]))


def held_out_frames(per_source: int) -> dict[str, list[np.ndarray]]:
    """The first held-out frames of each shared source: EgoHands' CARDS_LIVINGROOM_B_T video
    and each webcam set's test split (RGB)."""
    import json

    import cv2

    out: dict[str, list[np.ndarray]] = {}
    ego = sorted((DEFAULT_SAMPLE / HELD_OUT_VIDEO).glob("*.jpg"))[::3][:per_source]
    if ego:
        out["ego"] = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in ego]
    for name, folder in zip(("subhih", "asl", "fingers"), WEBCAM_SETS, strict=True):
        path = WEBCAM / folder / "annotations.json"
        if not path.is_file():
            continue
        test = [im for im in json.loads(path.read_text())["images"] if im["split"] == "test"]
        files = [WEBCAM / folder / "images" / im["file_name"] for im in test[::5][:per_source]]
        out[name] = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]
    return out


def agreement(model: Path, frames: dict[str, list[np.ndarray]]) -> dict[str, dict]:
    """Per source and landmark model (lite, lite_int8): hands both find, PCK@0.1 of our
    keypoints against MediaPipe Hands', and how often the two give the same hand."""
    from handspot.landmarks import HandLandmarker, LandmarkOptions
    from pipelines.backends import load_detector
    from pipelines.mediapipe_env import MediaPipeHands

    boxes = load_detector(model, "tflite_raw", score_threshold=0.1)
    stages = {v: HandLandmarker(boxes, LandmarkOptions(model=v)) for v in ("lite", "lite_int8")}
    out = {}
    with MediaPipeHands() as theirs:
        for name, images in frames.items():
            pictures = tqdm(images, desc=f"MediaPipe {name}", leave=False)
            found = [theirs.detect(im) for im in pictures]
            pairs = [(im, boxes.detect(im)) for im in images]  # once, refined by each file
            for variant, ours in stages.items():
                mine = [ours.refine(im, d).above(0.5) for im, d in pairs]
                out[f"{name}, {variant}"] = {"images": len(images), **_agree(mine, found)}
    return out


def _agree(ours: list, theirs: list) -> dict:
    both = correct = same = 0
    for a, b in zip(ours, theirs, strict=True):
        if not len(a) or not len(b):
            continue
        iou = box_iou(b.boxes, a.boxes)
        for j in range(len(b)):
            i = int(iou[j].argmax())
            if iou[j, i] < 0.5:
                continue
            size = max(np.ptp(b.keypoints[j, :, 0]), np.ptp(b.keypoints[j, :, 1]))
            dist = np.linalg.norm(a.keypoints[i, :, :2] - b.keypoints[j, :, :2], axis=1)
            both += 1
            correct += int((dist <= 0.1 * size).sum())
            same += int(a.data["handedness"][i] == b.data["handedness"][j])
    return {
        "hands_both_find": both,
        "pck@0.1": correct / (21 * both) if both else float("nan"),
        "handedness_agree": same / both if both else float("nan"),
    }


def ids(model: Path, frames: int) -> dict[str, dict]:
    """Id switches on the moving clip, with the landmark stage's tracking and with ByteTrack."""
    from handspot.run import DetectOptions
    from handspot.sources import Frame
    from handspot.tracking import id_switches
    from prep.samples import moving_hands_clip

    clip = moving_hands_clip(frames=frames)
    if clip is None:
        raise UserError("the shared data (EgoHands sample, webcam sets) is needed for the clip")
    pictures, truth = clip
    out = {}
    for covered in (False, True):
        shown = covered_hands(pictures, truth) if covered else pictures
        for name, landmarks in (("landmarks + track", True), ("ByteTrack", False)):
            options = DetectOptions(model=str(model), track=True, landmarks=landmarks)
            hook, every = options.hook(30.0)
            due, found = schedule(hook, every), []
            detector = options.detector_factory(stage=False)()
            for t, rgb in enumerate(shown):
                det = detector.detect(rgb) if due(t) else None
                found.append(hook(Frame(t, t / 30, rgb), det))
            out[f"{name}{COVERED if covered else ''}"] = id_switches(truth, found)
    return out


COVERED = ", a card over a hand 10 frames in 30"


def covered_hands(pictures: list[np.ndarray], truth: list[np.ndarray]) -> list[np.ndarray]:
    """The clip with a card (a flat, card-coloured box 60 px past the hand's) over one hand,
    then the other, for the last 10 frames of every 30: hands lost and found again."""
    out = []
    for t, (rgb, boxes) in enumerate(zip(pictures, truth, strict=True)):
        if t % 30 >= 20:
            x0, y0, x1, y1 = boxes[(t // 30) % len(boxes)].astype(int)
            rgb = rgb.copy()
            rgb[max(0, y0 - 60) : y1 + 60, max(0, x0 - 60) : x1 + 60] = (200, 190, 170)
        out.append(rgb)
    return out


def tracked(model: Path, pictures: list[np.ndarray], handedness=None) -> list:
    """The default video mode's detections on a list of frames, in order."""
    from handspot.run import DetectOptions
    from handspot.sources import Frame

    options = DetectOptions(model=str(model), track=True, landmarks=True)
    hook, every = options.hook(30.0)
    due = schedule(hook, every)
    if handedness is not None:
        hook.handedness = handedness
    detector = options.detector_factory(stage=False, boxes_for=True)()
    return [
        hook(Frame(t, t / 30, rgb), detector.detect(rgb) if due(t) else None)
        for t, rgb in enumerate(pictures)
    ]


def left_right(model: Path, frames: int) -> dict[str, dict]:
    """Left/right along tracks, the model's own label each frame against the steadied one, on
    the moving clip (2 and 4 hands) and each EgoHands video's labelled frames in order."""
    import cv2

    from handspot.handedness import PER_FRAME, HandednessOptions, label_changes
    from prep.samples import moving_hands_clip

    clips = {}
    for n in (2, 4):
        if clip := moving_hands_clip(frames=frames, hands=n):
            clips[f"moving clip, {n} hands"] = clip[0]
    for video in sorted(p for p in DEFAULT_SAMPLE.iterdir() if p.is_dir()):
        read = (cv2.imread(str(f)) for f in sorted(video.glob("*.jpg")))
        clips[f"EgoHands {video.name}"] = [cv2.cvtColor(b, cv2.COLOR_BGR2RGB) for b in read]
    out = {
        name: {
            "per frame": label_changes(tracked(model, pictures, PER_FRAME)),
            "steadied": label_changes(tracked(model, pictures, HandednessOptions())),
        }
        for name, pictures in tqdm(clips.items(), desc="left/right", unit="clip")
    }
    pictures = [im for name, ims in clips.items() if name.startswith("EgoHands") for im in ims]
    out["EgoHands frames as pictures (no track)"] = {
        name: label_changes(pictured(model, pictures, o))
        for name, o in (("per frame", PER_FRAME), ("steadied", HandednessOptions()))
    }
    return out


def pictured(model: Path, pictures: list[np.ndarray], handedness) -> list:
    """Image mode's detections of each picture, numbered as tracks of their own."""
    from handspot.api import HandDetectorOptions

    detector = HandDetectorOptions(model=str(model)).detector_factory()()
    detector.handedness = handedness
    found = [detector.detect(im) for im in pictures]
    first = np.cumsum([0] + [len(d) for d in found])
    return [d.with_(track_id=np.arange(n, n + len(d))) for d, n in zip(found, first, strict=False)]


def table(result: dict) -> str:
    lines = []
    if "invoke" in result:
        lines += ["ms a call, LiteRT, 1 thread, interleaved (median, IQR)", "",
                  "| model | median ms | IQR |", "|---|---|---|"]  # fmt: skip
        for name, (med, q1, q3) in result["invoke"].items():
            lines.append(f"| {name} | {med:.2f} | {q1:.2f}-{q3:.2f} |")
        lines.append("")
    if "stage" in result:
        s = result["stage"]
        lines += [f"the stage per hand on {s['hands']} real hands (crops, passes, fusion)", "",
                  "| landmark model | ms a hand | hands given the turned second crop |",
                  "|---|---|---|"]  # fmt: skip
        for variant in (v for v in s if v != "hands"):
            ms, turned = s[variant]
            lines.append(f"| {variant} | {ms:.2f} | {turned:.0%} |")
        lines.append("")
    if "fps" in result:
        lines += ["detect_multi_threaded, 1280x720, JSON written, 2 workers, interleaved",
                  "", "| video | mode | median FPS | IQR | vs boxes on the same files |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for video, modes in result["fps"].items():
            for name, v in modes.items():
                base = statistics.median(modes[FLOAT_BOXES if name in FLOATS else "boxes"])
                med, q1, q3 = quartiles(v)
                lines.append(
                    f"| {video} | {name} | {med:.1f} | {q1:.1f}-{q3:.1f} | {med / base:.2f} |"
                )
        lines.append("")
    if "api" in result:
        lines += ["HandDetector in an app, frames from memory, interleaved (ms a frame)", "",
                  "| video | call | median ms | IQR | ms / the default's |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for video, modes in result["api"].items():
            base = statistics.median(modes[API_VIDEO])
            for name, v in modes.items():
                med, q1, q3 = quartiles(v)
                lines.append(
                    f"| {video} | {name} | {med:.2f} | {q1:.2f}-{q3:.2f} | {med / base:.2f} |"
                )
        lines.append("")
    if "agreement" in result:
        lines += ["keypoints and left/right against MediaPipe Hands, hands both find", "",
                  "| source, landmark model | images | hands | PCK@0.1 | same hand |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, a in result["agreement"].items():
            lines.append(
                f"| {name} | {a['images']} | {a['hands_both_find']} | {a['pck@0.1']:.3f} | "
                f"{a['handedness_agree']:.3f} |"
            )
        lines.append("")
    if "ids" in result:
        lines += ["ids on the moving clip (held-out webcam hands over a real background)", "",
                  "| tracking | frames | id switches | per 100 frames | hand-frames found |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, r in result["ids"].items():
            lines.append(
                f"| {name} | {r['frames']} | {r['switches']} | "
                f"{r['switches_per_100_frames']:.2f} | {r['found']:.0%} |"
            )
        lines.append("")
    if "left_right" in result:
        lines += [
            "left/right along tracks: the model's label each frame, and steadied",
            "",
            "| clip | labels | hand-frames | changes | per 100 hand-frames | pair frames | "
            "pairs sharing a label |",
            "|---|---|---|---|---|---|---|",
        ]
        for clip, rows in result["left_right"].items():
            for name, r in rows.items():
                lines.append(
                    f"| {clip} | {name} | {r['track_frames']} | {r['changes']} | "
                    f"{r['changes_per_100']:.2f} | {r['pair_frames']} | "
                    f"{r['pair_same_label']:.0%} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detect.hands_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds (invokes)")
    p.add_argument("--fps-rounds", type=int, default=6, help="interleaved detect rounds")
    p.add_argument("--frames", type=int, default=150, help="video and clip frames")
    p.add_argument("--images", type=int, default=30, help="held-out frames a source")
    p.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to leave out: invoke, stage, fps, api, mediapipe, ids, "
        "left_right",
    )
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    try:
        if min(args.rounds, args.frames, args.images) < 1 or args.fps_rounds < 0:
            raise UserError("--rounds, --frames and --images must be >= 1")
        result: dict = {}
        frames = held_out_frames(args.images)
        if "invoke" not in skip:
            result["invoke"] = invoke_ms(args.model, args.rounds)
        if "stage" not in skip and frames:
            result["stage"] = stage_ms(args.model, [im for ims in frames.values() for im in ims])
        if "fps" not in skip and args.fps_rounds:
            from detect.bench import make_video

            with tempfile.TemporaryDirectory() as tmp:
                videos = {VIDEOS[0]: make_video(Path(tmp) / "v.mp4", args.frames, DEFAULT_SAMPLE)}
                for name, hands in zip(VIDEOS[1:], (2, 4), strict=True):
                    if clip := write_clip(Path(tmp) / f"clip{hands}.mp4", args.frames, hands):
                        videos[name] = clip
                result["fps"] = detect_fps(args.model, videos, args.fps_rounds, Path(tmp),
                                           mediapipe="mediapipe" not in skip)  # fmt: skip
        if "api" not in skip and args.fps_rounds:
            result["api"] = api_ms(args.model, min(args.frames, 150), args.fps_rounds)
        if "mediapipe" not in skip and frames:
            result["agreement"] = agreement(args.model, frames)
        if "ids" not in skip:
            result["ids"] = ids(args.model, args.frames)
        if "left_right" not in skip:
            result["left_right"] = left_right(args.model, args.frames)
        if args.json:
            from handspot.files import atomic_write_json

            atomic_write_json(args.json, result)
    except UserError as e:
        return fail(str(e))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
