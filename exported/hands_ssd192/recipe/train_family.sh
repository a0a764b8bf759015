#!/usr/bin/env bash
# Issue 12: the input-size family, one after the other; resumable (train resumes from its last
# checkpoint; finished steps are skipped).
set -euo pipefail
cd /work/main
for n in 256 224 192; do
  [ -f exported/hands_ssd$n/model_card.json ] && continue
  .venv/bin/python -m pipelines.train --pipeline runs/ssd$n/pipeline.config --model-dir runs/ssd$n --checkpoint-every 250
  .venv/bin/python -m pipelines.evaluate --model-dir runs/ssd$n
  .venv/bin/python -m pipelines.export --checkpoint-dir runs/ssd$n --out exported/hands_ssd$n --parity-images 40 --eval-metrics runs/ssd$n/eval/metrics-1000.json --card pipelines/cards/hands_ssd$n.json
done
touch runs/variants.done
