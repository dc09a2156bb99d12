#!/usr/bin/env bash
# The MNIST acceptance run: an AutoencoderKL (f = 4, 32×32×1 → 8×8×3), then a class-conditional latent diffusion
# model on its latents with condition dropout (classifier-free guidance), then the figures:
#   - the autoencoder's PSNR / SSIM on the 1,000 held-out digits,
#   - 1,000 generated digits (100 per class, DDIM 50 steps, guidance 3, EMA weights): the MNIST classifier's
#     accuracy on the requested class, FID / precision / recall in its feature space against the held-out
#     digits, and the same FID of real training digits vs held-out ones (the floor),
#   - a 10×10 grid (one row per class) and the loss curves of both runs.
# Budget: ~90 minutes on 2 cores. Usage: scripts/train-mnist.sh [OUT_DIR]   (default: runs/mnist)
# Environment: AE_STEPS, LDM_STEPS override the configs' max_steps; SEED (default 23).
OUT=${1:-runs/mnist}
source "$(dirname "$0")/two-stage.sh"

# 1. the autoencoder (L1 + KL + PatchGAN from disc_start; LPIPS needs VGG weights we do not ship: perceptual weight 0),
# 2. the class-conditional LDM on the frozen autoencoder's latents (cached: encoded once, fresh posterior samples)
train_two_stage configs/mnist/autoencoder-kl-f4.yaml configs/mnist/ldm-cond-kl-f4.yaml

# 3. figures
$LDM eval --autoencoder "$AE_RUN" --data mnist --json "$OUT/eval-autoencoder.json" 2>&1 | tee "$OUT/eval-autoencoder.log"
$LDM eval --samples "$LDM_RUN/checkpoints/last" --n-per-class 100 --steps 50 --scale 3 --floor \
  --save-samples "$OUT/samples" --json "$OUT/eval-ldm.json" 2>&1 | tee "$OUT/eval-ldm.log"
$LDM sample --ckpt "$LDM_RUN/checkpoints/last" --class 0,1,2,3,4,5,6,7,8,9 --n 10 --scale 3 --steps 50 --seed 0 \
  --out "$OUT/grid" --name digits 2>&1 | tee "$OUT/sample-grid.log"
finish_two_stage
echo "figures: $OUT/eval-autoencoder.json $OUT/eval-ldm.json $OUT/grid/ $OUT/loss-autoencoder.svg $OUT/loss-ldm.svg"
