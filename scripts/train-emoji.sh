#!/usr/bin/env bash
# The emoji run: an AutoencoderKL (f = 4, 32×32×3 → 8×8×4) on emoji-datasource-google, then a
# class-conditional latent diffusion model on its latents with the 10 emoji categories as classes and
# condition dropout (classifier-free guidance), then the figures:
#   - the autoencoder's PSNR / SSIM on the 200 held-out emoji,
#   - a grid with one row per category (DDIM 50 steps, guidance 3, EMA weights), and the loss curves.
# Usage: scripts/train-emoji.sh [OUT_DIR]   (default: runs/emoji)
# Environment: AE_STEPS, LDM_STEPS override the configs' max_steps; SEED (default 23).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/emoji}
SEED=${SEED:-23}
LDM="node --import tsx bin/ldm.mjs"
mkdir -p "$OUT"
stamp() { date +%s; }

t0=$(stamp)
$LDM train-autoencoder --config configs/emoji/autoencoder-kl-f4.yaml --logdir "$OUT/logs" --name ae --seed "$SEED" \
  ${AE_STEPS:+--max-steps "$AE_STEPS"} 2>&1 | tee "$OUT/train-autoencoder.log"
AE_RUN=$(ls -d "$OUT"/logs/*_ae | tail -1)
t1=$(stamp)

$LDM train --config configs/emoji/ldm-cond-kl-f4.yaml --logdir "$OUT/logs" --name ldm --seed "$SEED" \
  ${LDM_STEPS:+--max-steps "$LDM_STEPS"} \
  model.params.first_stage_config.params.ckpt_path="$AE_RUN/checkpoints/last" 2>&1 | tee "$OUT/train-ldm.log"
LDM_RUN=$(ls -d "$OUT"/logs/*_ldm | tail -1)
t2=$(stamp)

node --import tsx scripts/emoji-held-out.ts configs/emoji/autoencoder-kl-f4.yaml "$OUT/held-out"
$LDM eval --autoencoder "$AE_RUN" --data "$OUT/held-out" --json "$OUT/eval-autoencoder.json" 2>&1 | tee "$OUT/eval-autoencoder.log"
$LDM sample --ckpt "$LDM_RUN/checkpoints/last" --class 0,1,2,3,4,5,6,7,8,9 --n 8 --scale 3 --steps 50 --seed 0 \
  --out "$OUT/grid" --name categories 2>&1 | tee "$OUT/sample-grid.log"
cp "$AE_RUN/loss.svg" "$OUT/loss-autoencoder.svg"
cp "$LDM_RUN/loss.svg" "$OUT/loss-ldm.svg"
t3=$(stamp)

echo "autoencoder run: $AE_RUN ($(( (t1 - t0) / 60 )) min)"
echo "ldm run:         $LDM_RUN ($(( (t2 - t1) / 60 )) min)"
echo "evaluation:      $(( (t3 - t2) / 60 )) min; total $(( (t3 - t0) / 60 )) min"
grep -h "it/s)" "$OUT/train-autoencoder.log" "$OUT/train-ldm.log" || true
echo "figures: $OUT/eval-autoencoder.json $OUT/grid/ $OUT/loss-autoencoder.svg $OUT/loss-ldm.svg"
