#!/usr/bin/env bash
# One 512×512 Stable Diffusion v1 image, ours and PyTorch's, on the same random-weight checkpoint:
# `ldm sample` (DPM++ 2M, 20 steps, guidance 7.5 = one batch of 2 through the UNet per step) and
# bench/sd_sample_torch.py (the same work on the reference-structured torch twins), each under
# /usr/bin/time -v with the same thread count. Prints wall seconds and peak RSS of both.
#
# Usage: bench/sd_sample.sh CKPT [STEPS] [THREADS]      (CKPT from bench/sd_random_checkpoint.py, e.g. …-fp32.safetensors)
# Environment: SD_CONFIG (v1-inference.yaml), SD_VOCAB (folder of CLIP's vocab.json + merges.txt), SD_OUT (output folder).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ckpt="${1:?usage: bench/sd_sample.sh CKPT [STEPS] [THREADS]}"
steps="${2:-20}"
threads="${3:-2}"
ref="$here/../../shared/reference"
config="${SD_CONFIG:-$ref/configs/configs/stable-diffusion/v1-inference.yaml}"
vocab="${SD_VOCAB:-$ref/clip}"
out="${SD_OUT:-$(mktemp -d)}"
prompt="a watercolor of a fox in the snow"
negative="blurry, low quality"
mkdir -p "$out"

peak() { awk -F': ' '/Maximum resident set size/ {printf "%.2f GiB", $2 / 1048576} /Elapsed \(wall clock\)/ {w = $2} END {printf ", wall %s\n", w}' "$1"; }

echo "== ours: ldm sample ($steps steps, $threads threads)"
LDM_NUM_THREADS="$threads" /usr/bin/time -v -o "$out/ours.time" \
  node "$here/../bin/ldm.mjs" sample --config "$config" --ckpt "$ckpt" --vocab-dir "$vocab" \
  --prompt "$prompt" --negative-prompt "$negative" --sampler dpm++2m --steps "$steps" --scale 7.5 --H 512 --W 512 \
  --seed 42 --out "$out/ours" 2>&1 | tee "$out/ours.log"
echo "ours: $(peak "$out/ours.time")"

echo "== torch: bench/sd_sample_torch.py ($steps steps, $threads threads)"
/usr/bin/time -v -o "$out/torch.time" /usr/bin/python3 "$here/sd_sample_torch.py" "$ckpt" "$vocab" \
  --prompt "$prompt" --negative-prompt "$negative" --steps "$steps" --scale 7.5 --H 512 --W 512 --threads "$threads" \
  --out "$out/torch.png" ${SD_TORCH_MAX_STEPS:+--max-steps "$SD_TORCH_MAX_STEPS"} 2>&1 | tee "$out/torch.log"
echo "torch: $(peak "$out/torch.time")"
echo "outputs in $out"
