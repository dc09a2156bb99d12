#!/usr/bin/env bash
# The emoji run: an AutoencoderKL (f = 4, 32×32×3 → 8×8×4) on emoji-datasource-google, then a
# class-conditional latent diffusion model on its latents with the 10 emoji categories as classes and
# condition dropout (classifier-free guidance), then the figures:
#   - the autoencoder's PSNR / SSIM on the 200 held-out emoji,
#   - a grid with one row per category (DDIM 50 steps, guidance 3, EMA weights), and the loss curves.
# Usage: scripts/train-emoji.sh [OUT_DIR]   (default: runs/emoji)
# Environment: AE_STEPS, LDM_STEPS override the configs' max_steps; SEED (default 23).
OUT=${1:-runs/emoji}
source "$(dirname "$0")/two-stage.sh"

train_two_stage configs/emoji/autoencoder-kl-f4.yaml configs/emoji/ldm-cond-kl-f4.yaml

node --import tsx scripts/emoji-held-out.ts configs/emoji/autoencoder-kl-f4.yaml "$OUT/held-out"
$LDM eval --autoencoder "$AE_RUN" --data "$OUT/held-out" --json "$OUT/eval-autoencoder.json" 2>&1 | tee "$OUT/eval-autoencoder.log"
$LDM sample --ckpt "$LDM_RUN/checkpoints/last" --class 0,1,2,3,4,5,6,7,8,9 --n 8 --scale 3 --steps 50 --seed 0 \
  --out "$OUT/grid" --name categories 2>&1 | tee "$OUT/sample-grid.log"
finish_two_stage
echo "figures: $OUT/eval-autoencoder.json $OUT/grid/ $OUT/loss-autoencoder.svg $OUT/loss-ldm.svg"
