#!/usr/bin/env bash
# Train the deep-unfolded declipper (configs/music-unfolded-k128.yaml) on one GPU inside 9 minutes.
#   here:            python benchmarks/gpu_corpus.py --root data/music --out gpu-data   (under 60 MiB)
#   on the GPU host: bash benchmarks/gpu_unfolded.sh            (gpu-data/ must travel with the tree)
# Writes the run, its exported model and a held-out-free log to $OUT (default gpu-out/); score the
# model afterwards on the CPU: declip bench sqam --model "$OUT/model" ...
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
python3 -c "import declip" 2>/dev/null || python3 -m pip install -q -e .
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 500 declip fit --config configs/music-unfolded-k128.yaml \
  --trainer.accelerator=gpu --trainer.devices=1 --trainer.max_steps=4000 --trainer.max_time=00:00:07:00 \
  --trainer.val_check_interval=250 --trainer.default_root_dir="$OUT/run" \
  --data.init_args.corpus.init_args.root=gpu-data --data.init_args.batch_size=32 \
  --data.init_args.num_workers=8 2>&1 | tail -n 40 | tee "$OUT/fit.log"
declip zoo export "$(ls -t "$OUT"/run/lightning_logs/version_*/checkpoints/last.ckpt | head -1)" "$OUT/model"
