"""The page's video tracking (hands.js ``HandDetector.follow``) on a scripted world in Node, as
``tests/handspot/test_tracking.py`` holds Python's: stand-ins for the detector's network and
the landmark model (no browser, no model file), the page's own bookkeeping between them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.handspot import RUNNER

SCRIPT = r"""
import fs from "node:fs";
import vm from "node:vm";
globalThis.OffscreenCanvas = class { getContext() { return {}; } };
vm.runInThisContext(fs.readFileSync(process.argv[2], "utf8"));
const { hands } = globalThis;
const { frames, maxHands } = JSON.parse(fs.readFileSync(0, "utf8"));
let now = 0, detections = 0;

function upright(cx, cy, scale) {  // tests/handspot/test_landmarks.py upright_hand
  const points = [[0, 40]];
  [-30, -15, 0, 15, 30].forEach((x, finger) => {
    for (let joint = 0; joint < 4; joint++) {
      points.push([x * (1 + 0.1 * joint), (finger ? -5 : 10) - 12 * joint]);
    }
  });
  return points.map(([x, y]) => [x * scale + cx, y * scale + cy, 0]);
}
const landmarker = {
  async run(input, roi) {
    for (const [x, y, s] of frames[now]) {
      if (Math.abs(roi.cx - x) < s / 2 && Math.abs(roi.cy - y) < s / 2) {
        return { keypoints: upright(x, y - 10, s / 100), presence: 0.95, left: 0.9, roi };
      }
    }
    return { keypoints: upright(roi.cx, roi.cy, 1), presence: 0.05, left: 0.5, roi };
  },
  async refine(input, bbox, lm) { return this.run(input, hands.roiFromBox(bbox, lm.boxScale)); },
  dispose() {},
};
const card = { labels: { 1: "hand" },
               postprocess: { min_score: 0.1, iou_threshold: 0.5, max_detections: 10 } };
const rt = { name: "stand-in", width: 320, height: 320, dispose() {} };
const detector = new hands.HandDetector(rt, card, { maxHands }, [], landmarker);
detector.boxes = async () => {  // the network's boxes: every hand of the frame, best first
  detections += 1;
  return frames[now].map(([x, y, s]) => ({ bbox: [x - s / 2, y - s / 2, s, s], score: 0.9,
                                           classId: 1, label: "hand" }));
};
const input = { width: 640, height: 480 };
const out = [];
for (now = 0; now < frames.length; now++) {
  const found = await detector.detect(input, { track: true });
  out.push(found.map((d) => [d.trackId, d.bbox[0] + d.bbox[2] / 2]));
}
process.stdout.write(JSON.stringify({ out, detections }));
"""


def follow(frames: list, max_hands: int, tmp_path) -> dict:
    if shutil.which("node") is None:
        pytest.skip("node not found")
    script = tmp_path / "follow.mjs"
    script.write_text(SCRIPT)
    hands_js = RUNNER.parents[1] / "web" / "hands.js"
    payload = json.dumps({"frames": frames, "maxHands": max_hands})
    done = subprocess.run(["node", str(script), str(hands_js)], input=payload,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_page_follows_hands_and_rests_its_detector_while_max_hands_hold(tmp_path):
    """Two hands, one leaving at frame 30 and back at 40 where it left: with room for 2 the
    detector runs on frame 0 and when the hand is lost (then every 5 frames while there is
    room), never while both hold; with room for 4 it keeps looking. Both keep the left hand's
    id and give the returning hand its own back."""
    still = [[150, 240, 100], [450, 200, 110]]
    frames = [still] * 30 + [still[:1]] * 10 + [still] * 20
    two, four = follow(frames, 2, tmp_path), follow(frames, 4, tmp_path)
    for run in (two, four):
        assert [len(f) for f in run["out"]] == [2] * 30 + [1] * 10 + [2] * 20
        assert {i for f in run["out"] for i, x in f if x < 300} == {1}
        assert sorted(i for i, x in run["out"][-1]) == [1, 2]
    assert two["detections"] == 1 + 1 + 2  # frame 0; 30 (lost); 35 and 40 (room for one more)
    assert four["detections"] == 8  # 0, 5, 10, 20 (every 5, then 10), 30 (lost), 40, 45, 50


def test_a_hand_back_elsewhere_late_or_alone_gets_a_new_id_in_the_page(tmp_path):
    """As in Python: back far from where it was heading, after keep_lost (30) frames, or lost
    with every other hand (maybe a cut), a hand is another one."""
    still = [[150, 240, 100], [450, 200, 110]]
    elsewhere = [still] * 10 + [still[:1]] * 5 + [[still[0], [450, 420, 110]]] * 10
    late = [still] * 10 + [still[:1]] * 40 + [still] * 10
    for frames in (elsewhere, late):
        run = follow(frames, 4, tmp_path)
        assert sorted(i for i, x in run["out"][-1]) == [1, 3]
    alone = [still[1:]] * 10 + [[]] * 5 + [still[1:]] * 10
    assert [i for i, x in follow(alone, 4, tmp_path)["out"][-1]] == [2]
