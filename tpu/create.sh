#!/usr/bin/env bash
# Creates the TPU: a plain TPU VM (default) or, with QUEUED=1, a queued resource that waits for
# capacity (add SPOT=1 for spot/preemptible capacity; training survives preemption through the
# SIGTERM checkpoint and resumes from workdir on the next launch).
#   TPU_NAME=phi1 ZONE=us-central2-b ACCELERATOR=v4-64 tpu/create.sh
#   QUEUED=1 SPOT=1 ACCELERATOR=v5litepod-64 ZONE=us-west4-a RUNTIME=v2-alpha-tpuv5-lite tpu/create.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"

if [[ "${QUEUED:-0}" == 1 ]]; then
  gcloud compute tpus queued-resources create "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" \
    --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR" --runtime-version="$RUNTIME" \
    ${SPOT:+--spot}
  echo "queued; watch with: gcloud compute tpus queued-resources describe $TPU_NAME --zone=$ZONE"
else
  "${GCLOUD_TPU[@]}" create "$TPU_NAME" --accelerator-type="$ACCELERATOR" --version="$RUNTIME" \
    ${SPOT:+--spot}
fi
