#!/usr/bin/env bash
# Deletes the TPU VM (or, with --queued, the queued resource and its node). The gs:// workdir with
# its checkpoints, metrics and fetched logs is not touched.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

USAGE="usage: tpu/delete.sh [--queued] [common options]

Deletes the TPU VM (gcloud compute tpus tpu-vm delete) or, with --queued, the queued resource
(gcloud compute tpus queued-resources delete --force). Stop training first (tpu/stop.sh) so that
every worker has written its checkpoint. Nothing in gs:// is deleted.
  --queued             [QUEUED=1] the TPU was created with tpu/create.sh --queued"

QUEUED="${QUEUED:-0}"
for arg in "$@"; do
  parse_common "$arg" && continue
  case "$arg" in
    --queued) QUEUED=1 ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done
finish_common

if [[ "$QUEUED" == 1 ]]; then
  run gcloud compute tpus queued-resources delete "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" --force --quiet
else
  run "${TPU_VM[@]}" delete "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" --quiet
fi
