"""The worker common/mediapipe_env.py runs in MediaPipe's own environment (not the project's: only
numpy and mediapipe here). Requests on stdin: a JSON line, then the image's raw RGB bytes;
replies on stdout: one JSON line each.

    {"op": "hands", "shape": [h, w, 3], "max_hands": 4, "complexity": 1, "min_confidence": 0.5,
     "video": false}  ->  {"hands": [{"keypoints": [[x, y, z] x 21 pixels], "label", "score"}]}
"""

import json
import sys

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


OPS = {"hands": hands}


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
