#!/usr/bin/env bash
# Sets up and runs Tessera's demo: for now a small simulated active-learning loop on
# generated scenes (no download), writing a table and a plot under runs/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tessera simulate --generate-demo runs/demo/data --out runs/demo \
  --strategies dynamic,static,random_images --rounds 2 --initial-images 4 \
  --images-per-round 4 --superpixel-size 12 --iterations 150 --finetune-iterations 80 \
  --mc-samples 8 "$@"
