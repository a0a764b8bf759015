#!/usr/bin/env bash
# The Mask R-CNN run on the landmark stage's own masks (docs/masks.md): 300 EgoHands frames of
# three videos and 200 subhih-webcam train photos to train on; the fourth video's 100 frames and
# 50 subhih test photos held out (named to sort last, so preannotate's held-out block is them).
# Run from the checkout: bash pipelines/recipes/mask_rcnn_stage_masks/make_data.sh
set -euo pipefail
E=../shared/data/egohands-4videos
W=../shared/data/hands-webcam/subhih-webcam
mkdir -p data/mrcnn_frames
for v in CARDS_OFFICE_S_B CHESS_COURTYARD_B_T PUZZLE_LIVINGROOM_T_B; do
  for f in "$E/$v"/*.jpg; do cp "$f" "data/mrcnn_frames/a_${v}_$(basename "$f")"; done
done
for f in "$E"/CARDS_LIVINGROOM_B_T/*.jpg; do cp "$f" "data/mrcnn_frames/z_CARDS_LIVINGROOM_B_T_$(basename "$f")"; done
.venv/bin/python - <<'PY'
import json, shutil
from pathlib import Path
W = Path("../shared/data/hands-webcam/subhih-webcam")
coco = json.loads((W / "annotations.json").read_text())
train = [im for im in coco["images"] if im["split"] == "train"][::6][:200]
test = [im for im in coco["images"] if im["split"] == "test"][::5][:50]
for prefix, ims in (("b_", train), ("zz_", test)):
    for im in ims:
        shutil.copy(W / "images" / im["file_name"], f"data/mrcnn_frames/{prefix}{im['file_name']}")
PY
.venv/bin/python -m detect.preannotate --source data/mrcnn_frames --masks --held-out 0.2308 --formats coco --out data/mrcnn_pre
.venv/bin/python -m prep.coco import --json data/mrcnn_pre/coco.json --images data/mrcnn_pre/images --out data/mrcnn_ds
.venv/bin/python -m pipelines.configure --data data/mrcnn_ds --model mask_rcnn --out runs/mrcnn/pipeline.config --steps 5000 --batch-size 2 --from-scratch
# then: .venv/bin/python -m pipelines.train --pipeline runs/mrcnn/pipeline.config --model-dir runs/mrcnn
#       .venv/bin/python -m pipelines.evaluate --model-dir runs/mrcnn
