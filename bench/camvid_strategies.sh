#!/usr/bin/env bash
# Dynamic vs static (27.5% and matched to dynamic's pixels) vs random images vs full
# supervision on the shared CamVid at half resolution (180x240): train (367) is the pool, val
# (101) gives the mIoU; three seeds, sized for 2 CPU cores (about 40 minutes).
# Writes runs/bench_camvid/{rounds.jsonl,rounds.csv,miou_vs_pixels.png}; prints the table.
# Usage: bash bench/camvid_strategies.sh [DATASET_DIR] [extra simulate options...]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets/camvid}
shift || true
exec .venv/bin/tessera simulate --data "$data" --out runs/bench_camvid \
  --scale 0.5 --superpixel-size 16 --uncertainty entropy --mc-samples 20 \
  --strategies dynamic,static,static_matched,random_images,full \
  --initial-images 15 --images-per-round 15 --rounds 3 \
  --width 8 --depth 4 --batch-size 8 --crop-size 96 --learning-rate 1e-3 --class-weights \
  --iterations 500 --finetune-iterations 200 --full-iterations 1200 \
  --seeds 0,1,2 --device auto "$@"
