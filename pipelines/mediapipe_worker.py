"""The worker pipelines/mediapipe_env.py runs in MediaPipe's own environment (not the
project's: only numpy and mediapipe here). Requests on stdin: a JSON line, then the image's
raw RGB bytes; replies on stdout: one JSON line each.

    {"op": "hands", "shape": [h, w, 3], "max_hands": 4, "complexity": 1, "min_confidence": 0.5,
     "video": false}  ->  {"hands": [{"keypoints": [[x, y, z] x 21 pixels], "label", "score"}]}
    {"op": "hands_video", "shape": [0], "path": video, "max_hands": 4, "complexity": 0,
     "min_confidence": 0.5}  ->  {"frames", "hands", "seconds"}
        (MediaPipe Hands in video mode on a whole video file, decoded here with OpenCV: its
        frame rate, decoding included, as detect's)
    {"op": "objects", "shape": [h, w, 3], "model": path, "video": false, "timestamp_ms": 0,
     "score_threshold": 0.0, "max_results": -1}
        ->  {"objects": [{"box": [x0, y0, x1, y1] pixels, "score", "label"}],
             "ms": detect()'s time in this process}
        (MediaPipe Tasks' ObjectDetector: the model needs TFLite metadata)
    {"op": "metadata", "shape": [0], "model": path, "out": path, "labels": [...],
     "mean": [127.5], "std": [127.5]}  ->  {"json": the metadata as JSON}
        (MediaPipe's own writer for detectors with the TFLite detection post-processing op;
        metadata written before is replaced); with "anchors": anchors.bin, "scales_xywh",
        "order": "SCORE_LOCATION" or "LOCATION_SCORE", the writer for raw SSD outputs
"""

import io
import json
import struct
import sys
import time
import zipfile

import numpy as np

_hands = {}


def hands(image: np.ndarray, request: dict) -> dict:
    import mediapipe as mp

    key = (request["max_hands"], request["complexity"], request["min_confidence"],
           request["video"])  # fmt: skip
    if key not in _hands:
        _hands[key] = mp.solutions.hands.Hands(
            static_image_mode=not request["video"],
            max_num_hands=request["max_hands"],
            model_complexity=request["complexity"],
            min_detection_confidence=request["min_confidence"],
        )
    h, w = image.shape[:2]
    result = _hands[key].process(image)
    found = []
    marks_all, sides = result.multi_hand_landmarks or [], result.multi_handedness or []
    for marks, side in zip(marks_all, sides, strict=True):
        best = side.classification[0]
        found.append(
            {
                "keypoints": [[p.x * w, p.y * h, p.z * w] for p in marks.landmark],
                "label": best.label,
                "score": best.score,
            }
        )
    return {"hands": found}


def hands_video(_image: np.ndarray, request: dict) -> dict:
    import cv2
    import mediapipe as mp

    tracker = mp.solutions.hands.Hands(
        static_image_mode=False,
        max_num_hands=request["max_hands"],
        model_complexity=request["complexity"],
        min_detection_confidence=request["min_confidence"],
    )
    video = cv2.VideoCapture(request["path"])
    frames = hands = 0
    start = time.perf_counter()
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        result = tracker.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        frames += 1
        hands += len(result.multi_hand_landmarks or [])
    seconds = time.perf_counter() - start
    video.release()
    tracker.close()
    return {"frames": frames, "hands": hands, "seconds": seconds}


_detectors = {}


def objects(image: np.ndarray, request: dict) -> dict:
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    key = (request["model"], request["video"], request["score_threshold"],
           request["max_results"])  # fmt: skip
    if key not in _detectors:
        mode = vision.RunningMode.VIDEO if request["video"] else vision.RunningMode.IMAGE
        _detectors[key] = vision.ObjectDetector.create_from_options(
            vision.ObjectDetectorOptions(
                base_options=tasks.BaseOptions(model_asset_path=request["model"]),
                running_mode=mode,
                score_threshold=request["score_threshold"],
                max_results=request["max_results"],
            )
        )
    detector = _detectors[key]
    start = time.perf_counter()
    frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
    if request["video"]:
        result = detector.detect_for_video(frame, request["timestamp_ms"])
    else:
        result = detector.detect(frame)
    ms = (time.perf_counter() - start) * 1e3
    found = []
    for d in result.detections:
        b, best = d.bounding_box, d.categories[0]
        found.append(
            {
                "box": [b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height],
                "score": best.score,
                "label": best.category_name,
            }
        )
    return {"objects": found, "ms": ms}


def metadata(_image: np.ndarray, request: dict) -> dict:
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_info,
        metadata_writer,
        object_detector,
    )

    with open(request["model"], "rb") as f:
        model = bytearray(f.read())
    try:  # written before: drop its associated files (a zip after the flatbuffer), then rewrite
        with zipfile.ZipFile(io.BytesIO(model)) as packed:
            starts = [info.header_offset for info in packed.infolist()]
        model = model[: min(starts)] if starts else model
    except zipfile.BadZipFile:
        pass
    labels = metadata_writer.Labels().add(request["labels"])
    if request.get("anchors") is None:
        writer = object_detector.MetadataWriter.create_for_models_with_nms(
            model, request["mean"], request["std"], labels
        )
    else:  # the raw network: MediaPipe decodes the boxes on these anchors and runs the NMS
        anchors = np.fromfile(request["anchors"], "<f4").reshape(-1, 4)  # yc, xc, h, w
        fixed = object_detector.FixedAnchorsSchema(
            [object_detector.FixedAnchor(float(a[1]), float(a[0]), float(a[3]), float(a[2]))
             for a in anchors]
        )  # fmt: skip
        x, y, w, h = request["scales_xywh"]
        decoding = object_detector.TensorsDecodingOptions(
            num_classes=len(request["labels"]), num_boxes=len(anchors), num_coords=4,
            keypoint_coord_offset=0, num_keypoints=0, num_values_per_keypoint=2,
            x_scale=x, y_scale=y, w_scale=w, h_scale=h,
            apply_exponential_on_box_size=True, sigmoid_score=False,
        )  # fmt: skip
        order = metadata_info.RawDetectionOutputTensorsOrder[request["order"]]
        writer = object_detector.MetadataWriter.create_for_models_without_nms(
            model, request["mean"], request["std"], labels,
            object_detector.SsdAnchorsOptions(fixed), decoding, order,
        )  # fmt: skip
    content, json_text = writer.populate()
    with open(request["out"], "wb") as f:
        f.write(fixed_zip_times(bytes(content)))
    return {"json": json_text}


def fixed_zip_times(data: bytes) -> bytes:
    """The associated files' zip with every entry's time set to 1980-01-01 (the writer stamps
    the clock's), in place: the same model, labels and bytes from every export."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as packed:
        infos, central = packed.infolist(), packed.start_dir
    dos = struct.pack("<HH", 0, (1 << 5) | 1)  # time 00:00:00, date 1980-01-01
    for info in infos:  # local headers: "PK\3\4", time and date at +10
        out[info.header_offset + 10 : info.header_offset + 14] = dos
    for _ in infos:  # central directory entries: "PK\1\2", time and date at +12
        if out[central : central + 4] != b"PK\x01\x02":
            raise ValueError("unexpected zip layout in the TFLite file")
        out[central + 12 : central + 16] = dos
        names, extra, comment = struct.unpack("<HHH", out[central + 28 : central + 34])
        central += 46 + names + extra + comment
    return bytes(out)


OPS = {"hands": hands, "hands_video": hands_video, "objects": objects, "metadata": metadata}


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout
    while line := stdin.readline():
        request = json.loads(line)
        shape = request["shape"]
        data = stdin.read(int(np.prod(shape)))
        try:
            image = np.frombuffer(data, np.uint8).reshape(shape)
            reply = OPS[request["op"]](image, request)
        except Exception as e:  # one bad request is one error reply, not a dead worker
            reply = {"error": f"{type(e).__name__}: {e}"}
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()


if __name__ == "__main__":
    main()
