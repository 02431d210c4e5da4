#!/usr/bin/env bash
# Deletes the TPU VM (or queued resource with QUEUED=1). Checkpoints in gs:// are kept.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ "${QUEUED:-0}" == 1 ]]; then
  gcloud compute tpus queued-resources delete "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" --force --quiet
else
  "${GCLOUD_TPU[@]}" delete "$TPU_NAME" --quiet
fi
