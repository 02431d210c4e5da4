#!/usr/bin/env bash
# Creates the TPU: a TPU VM, or with --queued a queued resource that waits for capacity. Spot
# capacity (--spot) can be preempted at any time; training then resumes from its newest
# checkpoint in the gs:// workdir when tpu/launch.sh is run again (see tpu/README.md).
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

USAGE="usage: tpu/create.sh [--accelerator=TYPE] [--runtime=VERSION] [--spot] [--queued] [common options]

Creates a TPU VM (gcloud compute tpus tpu-vm create) or, with --queued, a queued resource whose
node has the same name (gcloud compute tpus queued-resources create). Reads nothing locally;
writes nothing locally.
  --accelerator=TYPE   [ACCELERATOR, default v4-32] e.g. v4-32, v5litepod-256, v5p-128, v6e-64
  --runtime=VERSION    [RUNTIME] TPU software version; default by accelerator: v4 tpu-ubuntu2204-base,
                       v5litepod v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e
  --spot               [SPOT=1] spot capacity: cheaper, preemptible
  --queued             [QUEUED=1] a queued resource instead of a plain TPU VM"

ACCELERATOR="${ACCELERATOR:-v4-32}"
RUNTIME="${RUNTIME:-}"
SPOT="${SPOT:-0}"
QUEUED="${QUEUED:-0}"
for arg in "$@"; do
  parse_common "$arg" && continue
  case "$arg" in
    --accelerator | --accelerator=*) ACCELERATOR="$(value_of "$arg")" ;;
    --runtime | --runtime=*) RUNTIME="$(value_of "$arg")" ;;
    --spot) SPOT=1 ;;
    --queued) QUEUED=1 ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done
finish_common
check --accelerator "$ACCELERATOR" '^v[0-9]+[a-z]*-[0-9]+$' "a TPU type such as v4-32 or v5litepod-256"
if [[ -z "$RUNTIME" ]]; then
  case "$ACCELERATOR" in
    v4-*) RUNTIME=tpu-ubuntu2204-base ;;
    v5litepod-*) RUNTIME=v2-alpha-tpuv5-lite ;;
    v5p-*) RUNTIME=v2-alpha-tpuv5 ;;
    v6e-*) RUNTIME=v2-alpha-tpuv6e ;;
    *) usage_error "no default runtime for $ACCELERATOR: pass --runtime=VERSION (gcloud compute tpus versions list)" ;;
  esac
fi
check --runtime "$RUNTIME" '^[a-z0-9][-a-z0-9.]*$' "a version from 'gcloud compute tpus versions list'"
spot=()
[[ "$SPOT" == 1 ]] && spot=(--spot)

if [[ "$QUEUED" == 1 ]]; then
  run gcloud compute tpus queued-resources create "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" \
    --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR" --runtime-version="$RUNTIME" "${spot[@]}"
  note "queued; it is ready when this says ACTIVE:" \
    "gcloud compute tpus queued-resources describe $TPU_NAME --project=$PROJECT --zone=$ZONE"
else
  run "${TPU_VM[@]}" create "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" \
    --accelerator-type="$ACCELERATOR" --version="$RUNTIME" "${spot[@]}"
fi
note "next: tpu/install.sh --name=$TPU_NAME --zone=$ZONE --project=$PROJECT"
