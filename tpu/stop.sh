#!/usr/bin/env bash
# Stops training on every worker with SIGTERM, the signal a preemption sends: the workers agree on
# a step, each writes its part of that step's checkpoint to the workdir, and they exit. Waits for
# that unless --no-wait. tpu/launch.sh with the same workdir continues from there.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

USAGE="usage: tpu/stop.sh [--no-wait] [common options]

Sends SIGTERM to the training process (~/$REMOTE_DIR/train.pid, written by tpu/launch.sh) on every
worker and waits until it has saved its checkpoint and exited.
  --no-wait            return once the signal is sent"

WAIT=1
for arg in "$@"; do
  parse_common "$arg" && continue
  case "$arg" in
    --no-wait) WAIT=0 ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done
finish_common

wait_loop=""
[[ "$WAIT" == 1 ]] && wait_loop="while kill -0 \$(cat train.pid) 2>/dev/null; do sleep 5; done; echo \"\$(hostname): training exited\"; "
on_workers all "cd $REMOTE_DIR; if [ -f train.pid ] && kill -0 \$(cat train.pid) 2>/dev/null; then kill -TERM \$(cat train.pid); ${wait_loop}else echo \"\$(hostname): not training\"; fi"
