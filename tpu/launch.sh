#!/usr/bin/env bash
# Starts training on every worker at once (multi-host: each process calls
# jax.distributed.initialize(), reads its own slice of the data, and they train one model).
# Output goes to ~/phi1-jax/train.log on each worker; the run survives the ssh session ending.
#   WORKDIR=gs://my-bucket/phi1 tpu/launch.sh configs/phi1.py [--config.train.lr=... ...]
#   tpu/launch.sh --stop            # SIGTERM: every worker saves a checkpoint and exits
#   tpu/launch.sh --logs            # last lines of worker 0's log
set -euo pipefail
source "$(dirname "$0")/env.sh"

case "${1:-}" in
  --stop) exec "${GCLOUD_TPU[@]}" ssh "$TPU_NAME" --worker=all --command="kill -TERM \$(cat phi1-jax/train.pid)" ;;
  --logs) exec "${GCLOUD_TPU[@]}" ssh "$TPU_NAME" --worker=0 --command="tail -n 50 phi1-jax/train.log" ;;
  "") echo "usage: WORKDIR=gs://bucket/run $0 configs/<name>.py [--config.a.b=v ...]" >&2; exit 2 ;;
esac
: "${WORKDIR:?set WORKDIR to a gs:// path every worker can write (checkpoints, metrics)}"
CONFIG="$1"; shift
ARGS=$(printf ' %q' "$@")

"${GCLOUD_TPU[@]}" ssh "$TPU_NAME" --worker=all --command="cd phi1-jax && \
  PHI1_DISTRIBUTED=1 nohup .venv/bin/python -m phi1_jax.train --config=$CONFIG --config.workdir=$WORKDIR $ARGS \
  > train.log 2>&1 < /dev/null & echo \$! > train.pid"
echo "started on all workers of $TPU_NAME; follow with: $0 --logs"
