# Shared by scripts/train-mnist.sh and scripts/train-emoji.sh (sourced, not run): the two training stages
# of a latent diffusion model and the closing summary.
#   train_two_stage AE_CONFIG LDM_CONFIG   trains the autoencoder, then the LDM on its latents
#     (AE_STEPS / LDM_STEPS override the configs' max_steps; SEED, default 23), into $OUT/logs; sets
#     AE_RUN, LDM_RUN and the stage start times.
#   finish_two_stage   copies both loss curves into $OUT and prints the times and speeds.
# Needs OUT set; defines LDM (the CLI) and stamp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SEED=${SEED:-23}
LDM="node --import tsx bin/ldm.mjs"
mkdir -p "$OUT"
stamp() { date +%s; }

train_two_stage() {
  local ae_config=$1 ldm_config=$2
  T0=$(stamp)
  $LDM train-autoencoder --config "$ae_config" --logdir "$OUT/logs" --name ae --seed "$SEED" \
    ${AE_STEPS:+--max-steps "$AE_STEPS"} 2>&1 | tee "$OUT/train-autoencoder.log"
  AE_RUN=$(ls -d "$OUT"/logs/*_ae | tail -1)
  T1=$(stamp)
  $LDM train --config "$ldm_config" --logdir "$OUT/logs" --name ldm --seed "$SEED" \
    ${LDM_STEPS:+--max-steps "$LDM_STEPS"} \
    model.params.first_stage_config.params.ckpt_path="$AE_RUN/checkpoints/last" 2>&1 | tee "$OUT/train-ldm.log"
  LDM_RUN=$(ls -d "$OUT"/logs/*_ldm | tail -1)
  T2=$(stamp)
}

finish_two_stage() {
  cp "$AE_RUN/loss.svg" "$OUT/loss-autoencoder.svg"
  cp "$LDM_RUN/loss.svg" "$OUT/loss-ldm.svg"
  local t3
  t3=$(stamp)
  echo "autoencoder run: $AE_RUN ($(( (T1 - T0) / 60 )) min)"
  echo "ldm run:         $LDM_RUN ($(( (T2 - T1) / 60 )) min)"
  echo "evaluation:      $(( (t3 - T2) / 60 )) min; total $(( (t3 - T0) / 60 )) min"
  grep -h "it/s)" "$OUT/train-autoencoder.log" "$OUT/train-ldm.log" || true
}
