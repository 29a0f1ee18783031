#!/usr/bin/env bash
# Label efficiency on the shared CamVid at half resolution (240x180), at equal pixels:
# dynamic vs static (27.5% of superpixels) vs static matched to dynamic's pixels vs random
# superpixels vs random whole images vs full supervision, three seeds.
#
# Model: EfficientNet-Lite0 (ImageNet weights from the installed package, inputs scaled
# (x - 127) / 128 as they were trained), frozen, at encoder zoom 2 (it sees each image
# upsampled 2x; the decoder keeps its stride-4 grid); its features are computed once per
# image (~1 MB float16 each, ~700 MB for the 701 images) and shared by every strategy and
# round; only the FPN decoder and the classifier train. Splits: pool = train (367), early
# stopping on val (101), mIoU on test (233). Every training warms its learning rate up over
# 50 iterations, then stops after 4 evaluations (every 25 iterations) without a higher val
# mIoU, at most 600 (initial), 300 (per round) and 1,200 (full supervision) iterations, and
# keeps its own best weights (not the previous round's: that model was picked as the maximum
# of many noisy val scores, and fine-tunes that had to beat it stalled for rounds). 10 random initial images, then 4 rounds x 20 images: dynamic's curve
# passes ~10% of the pool's pixels around its last rounds. SLIC 16 px (~131 superpixels per
# image), entropy, T = 20 (cheap path).
#
# The features are computed first, once, with both cores, into FEATURES (default
# runs/simulate_features, ~700 MB; reused by later runs while encoder and images are the same).
# Each seed then runs as its own single-threaded process (SEEDS, default "0 1 2"), all at once:
# on 2 shared cores that finishes sooner than one process with 2 threads, since the small
# decoder's steps do not keep two threads busy. The per-seed folders are then merged into
# one report. Writes runs/bench_camvid/{rounds,queries}.{jsonl,csv}, equal_pixels.csv,
# auc.csv, miou_vs_pixels.png, config.json (and seedN/ with each seed's log); prints the
# tables.
# Usage: [SEEDS="0 1 2"] [OUT=runs/bench_camvid] [FEATURES=DIR] bash bench/camvid_strategies.sh [DATASET_DIR]
#        [extra simulate options...]
#   a quick check: SEEDS=0 OUT=runs/bench_camvid_small bash bench/camvid_strategies.sh \
#     ../shared/datasets/camvid --max-pool-images 60 --max-val-images 20 \
#     --max-test-images 40 --rounds 2 --images-per-round 10
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets/camvid}
shift || true
out=${OUT:-runs/bench_camvid}
seeds=${SEEDS:-0 1 2}
features=${FEATURES:-runs/simulate_features}
mkdir -p "$out"
started=$(date +%s)
simulate() {
  .venv/bin/tessera simulate --data "$data" --feature-cache "$features" \
    --scale 0.5 --superpixel-size 16 --superpixel-algorithm slic \
    --uncertainty entropy --mc-samples 20 --static-fraction 0.275 \
    --strategies dynamic,static,static_matched,random_superpixels,random_images,full \
    --model efficientnet_lite0 --encoder-zoom 2 \
    --pool-split train --val-split val --test-split test \
    --initial-images 10 --images-per-round 20 --rounds 4 \
    --batch-size 8 --learning-rate 5e-3 --warmup-iterations 50 --no-keep-previous-model \
    --iterations 600 --finetune-iterations 300 --full-iterations 1200 \
    --eval-every 25 --patience 4 --stop-on miou \
    --device auto "$@"
}
OMP_NUM_THREADS=2 simulate --out "$out" --features-only "$@"
pids=()
parts=()
for seed in $seeds; do
  mkdir -p "$out/seed$seed"
  OMP_NUM_THREADS=1 simulate --out "$out/seed$seed" --seeds "$seed" "$@" \
    >"$out/seed$seed/log.txt" 2>&1 &
  pids+=($!)
  parts+=("$out/seed$seed")
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if [ "$failed" -ne 0 ]; then
  echo "a seed failed: see $out/seed*/log.txt" >&2
  tail -n 5 "$out"/seed*/log.txt >&2
  exit 1
fi
.venv/bin/python -m worker.simulation.report "$out" CamVid --merge "${parts[@]}"
echo "benchmark: $(($(date +%s) - started)) s wall clock for seeds: $seeds"
