"""handspot: hands in images, video and cameras, with 21 keypoints, left/right and an id a hand,
on LiteRT; no TensorFlow. The shipped model and MediaPipe's hand landmark models are inside.

    import handspot
    with handspot.HandDetector() as hands:
        found = hands.detect(rgb)           # a handspot.Detections
"""

from handspot.api import HandDetector, HandDetectorOptions
from handspot.backends import load_detector
from handspot.detections import Detections
from handspot.run import DetectOptions, detect

__all__ = [
    "DetectOptions",
    "Detections",
    "HandDetector",
    "HandDetectorOptions",
    "detect",
    "load_detector",
]
