#!/usr/bin/env bash
# Label efficiency on the shared CamVid at half resolution (240x180), at equal pixels:
# dynamic vs static (27.5% of superpixels) vs static matched to dynamic's pixels vs random
# superpixels vs random whole images vs full supervision, three seeds.
#
# Model: EfficientNet-Lite0 (ImageNet weights from the installed package), frozen; its
# features are computed once per image (~0.6 MB float16 each, ~420 MB for the 701 images,
# in memory) and shared by every seed, strategy and round; only the FPN decoder and the
# classifier train. Splits: pool = train (367), early stopping on val (101), mIoU on test
# (233). Each training stops after 4 evaluations (every 25 iterations) without a lower val
# loss, at most 300 (initial), 150 (per round) and 1,200 (full supervision) iterations.
# 10 random initial images, then 4 rounds x 20 images: dynamic's curve passes ~10% of the
# pool's pixels around its last rounds. SLIC 16 px (~131 superpixels per image), entropy,
# T = 20 (cheap path).
#
# Sized for 2 CPU cores: about 60 minutes for the three seeds (see README "Benchmarks").
# Writes runs/bench_camvid/{rounds,queries}.{jsonl,csv}, equal_pixels.csv, auc.csv,
# miou_vs_pixels.png, config.json; prints the tables.
# Usage: bash bench/camvid_strategies.sh [DATASET_DIR] [extra simulate options...]
#   a quick check: bash bench/camvid_strategies.sh ../shared/datasets/camvid --seeds 0 \
#     --max-pool-images 60 --max-val-images 20 --max-test-images 40 --rounds 2
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets/camvid}
shift || true
exec .venv/bin/tessera simulate --data "$data" --out runs/bench_camvid \
  --scale 0.5 --superpixel-size 16 --superpixel-algorithm slic \
  --uncertainty entropy --mc-samples 20 --static-fraction 0.275 \
  --strategies dynamic,static,static_matched,random_superpixels,random_images,full \
  --model efficientnet_lite0 --pool-split train --val-split val --test-split test \
  --initial-images 10 --images-per-round 20 --rounds 4 \
  --batch-size 8 --learning-rate 5e-3 \
  --iterations 300 --finetune-iterations 150 --full-iterations 1200 \
  --eval-every 25 --patience 4 \
  --seeds 0,1,2 --device auto "$@"
