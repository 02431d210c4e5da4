#!/usr/bin/env bash
# Shows the end of the training logs on the TPU workers, or fetches every worker's log: each
# worker copies its log to WORKDIR/logs/ in GCS, then they are copied from there into a local folder.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

USAGE="usage: tpu/logs.sh [--worker=all|N] [--lines=N] [--follow] [common options]
       tpu/logs.sh --fetch=DIR --workdir=gs://BUCKET/RUN [common options]

Reads ~/$REMOTE_DIR/logs/train-HOSTNAME.log on the workers (written by tpu/launch.sh).
  --worker=all|N       whose log to show [default 0, the worker that writes metrics]
  --lines=N            how many lines from the end [default 50]
  --follow             keep printing new lines (Ctrl-C to stop; training goes on)
  --fetch=DIR          copy every worker's log to WORKDIR/logs/ and from there into DIR
  --workdir=gs://...   [WORKDIR] the run's workdir (for --fetch)"

WORKER=0
LINES=50
FOLLOW=0
FETCH=""
WORKDIR="${WORKDIR:-}"
for arg in "$@"; do
  parse_common "$arg" && continue
  case "$arg" in
    --worker | --worker=*) WORKER="$(value_of "$arg")" ;;
    --lines | --lines=*) LINES="$(value_of "$arg")" ;;
    --follow) FOLLOW=1 ;;
    --fetch | --fetch=*) FETCH="$(value_of "$arg")" ;;
    --workdir | --workdir=*) WORKDIR="$(value_of "$arg")" ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done
finish_common
check --worker "$WORKER" '^(all|[0-9]+)$' "'all' or a worker number"
check --lines "$LINES" '^[1-9][0-9]*$' "a positive number"

if [[ -z "$FETCH" ]]; then
  tail_flags="-n $LINES"
  [[ "$FOLLOW" == 1 ]] && tail_flags+=" -F"
  on_workers "$WORKER" "tail $tail_flags $REMOTE_DIR/logs/train-*.log"
  exit 0
fi
[[ -n "$WORKDIR" ]] || usage_error "--fetch needs --workdir=gs://BUCKET/RUN (the logs travel through it)"
check --workdir "$WORKDIR" '^gs://[a-z0-9][-a-z0-9_.]*[a-z0-9](/[^[:space:]]*)?$' "a gs:// path"
on_workers all "gcloud storage cp $REMOTE_DIR/logs/train-*.log ${WORKDIR%/}/logs/"
[[ "$DRY_RUN" == 1 ]] || mkdir -p "$FETCH"
run gcloud storage cp "${WORKDIR%/}/logs/*" "${FETCH%/}/"
