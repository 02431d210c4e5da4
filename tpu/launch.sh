#!/usr/bin/env bash
# Starts `python -m phi1_jax.train` on every worker of the TPU at once, detached from the ssh
# session, all writing to one gs:// workdir, each to its own log ~/phi1-jax/logs/train-HOST.log.
# Each process calls jax.distributed.initialize() (PHI1_DISTRIBUTED=1), which finds the other
# workers through the TPU metadata: no coordinator address is needed. Running it again with the
# same workdir (after tpu/stop.sh or a preemption) continues from the newest checkpoint there.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

USAGE="usage: tpu/launch.sh --workdir=gs://BUCKET/RUN --accelerator=TYPE [--skip-preflight] [--env=NAME=VALUE ...] [common options] CONFIG [--config.a.b=VALUE ...]

Runs on every worker (gcloud compute tpus tpu-vm ssh --worker=all), in ~/$REMOTE_DIR as installed
by tpu/install.sh: python -m phi1_jax.train --config=CONFIG --config.workdir=WORKDIR [overrides].
Training reads its data as the config says and writes checkpoints/, metrics.jsonl, config.json and
tensorboard/ under WORKDIR; each worker's output goes to ~/$REMOTE_DIR/logs/train-HOSTNAME.log.
Refuses to start where training is already running. First, on this machine, the preflight
(python -m phi1_jax.preflight) compiles the train and eval steps for the slice: a run that does
not fit its chips stops here, before any gcloud command, with the override that fits.
  CONFIG               a config file of this repository, e.g. configs/phi1.py
  --config.a.b=VALUE   config overrides, passed on as given (not --config.workdir: use --workdir)
  --workdir=gs://...   [WORKDIR] the one workdir all workers share (local disks are not shared)
  --accelerator=TYPE   [ACCELERATOR] the slice's TPU type as created, e.g. v4-32, v5litepod-256
  --skip-preflight     launch without compiling for the slice first (needs no libtpu here)
  --env=NAME=VALUE     an extra environment variable for the training processes (repeatable),
                       e.g. --env=LIBTPU_INIT_ARGS=--xla_tpu_enable_async_collective_fusion=true"

WORKDIR="${WORKDIR:-}"
ACCELERATOR="${ACCELERATOR:-}"
PREFLIGHT=1
CONFIG=""
overrides=()
environment=(PHI1_DISTRIBUTED=1)
for arg in "$@"; do
  parse_common "$arg" && continue
  case "$arg" in
    --workdir | --workdir=*) WORKDIR="$(value_of "$arg")" ;;
    --accelerator | --accelerator=*) ACCELERATOR="$(value_of "$arg")" ;;
    --skip-preflight) PREFLIGHT=0 ;;
    --env | --env=*)
      check --env "$(value_of "$arg")" '^[A-Za-z_][A-Za-z0-9_]*=' "NAME=VALUE"
      environment+=("${arg#--env=}") ;;
    --config.workdir=*) usage_error "give the workdir as --workdir=gs://..., not $arg" ;;
    --config.*=*) overrides+=("$arg") ;;
    -*) usage_error "unknown argument '$arg' (config overrides look like --config.train.lr=3e-4)" ;;
    *)
      [[ -z "$CONFIG" ]] || usage_error "one CONFIG only: got '$CONFIG' and '$arg'"
      CONFIG="$arg" ;;
  esac
done
finish_common
[[ -n "$CONFIG" ]] || usage_error "CONFIG is missing, e.g. configs/phi1.py"
check CONFIG "$CONFIG" '^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$' "a config file path relative to the repository"
[[ -f "$REPO_DIR/$CONFIG" ]] || usage_error "no config file $CONFIG in $REPO_DIR"
[[ -n "$WORKDIR" ]] || usage_error "--workdir=gs://BUCKET/RUN is missing"
check --workdir "$WORKDIR" '^gs://[a-z0-9][-a-z0-9_.]*[a-z0-9](/[^[:space:]]*)?$' \
  "a gs:// path: every worker must read and write the same checkpoints"

if [[ "$PREFLIGHT" == 1 ]]; then
  [[ -n "$ACCELERATOR" ]] || usage_error "--accelerator=TYPE is missing (the preflight compiles for it; --skip-preflight to launch without)"
  check --accelerator "$ACCELERATOR" '^v[0-9]+[a-z]*-[0-9]+$' "a TPU type such as v4-32 or v5litepod-256"
  preflight_python="${PYTHON:-$REPO_DIR/.venv/bin/python}"
  [[ -x "$preflight_python" ]] || preflight_python=python3
  if ! report="$(cd "$REPO_DIR" && JAX_PLATFORMS=cpu "$preflight_python" -m phi1_jax.preflight \
      "--config=$CONFIG" "--topology=$ACCELERATOR" --programs=train_step,eval_step "${overrides[@]}" 2>&1)"; then
    printf '%s\n' "$report" >&2
    printf 'launch.sh: error: the preflight for %s failed (above); nothing was launched (--skip-preflight to launch anyway)\n' \
      "$ACCELERATOR" >&2
    exit 1
  fi
  note "$report"
fi

train=(.venv/bin/python -m phi1_jax.train "--config=$CONFIG" "--config.workdir=${WORKDIR%/}" "${overrides[@]}")
log="logs/train-\$(hostname).log"
remote=(
  "cd $REMOTE_DIR"
  "mkdir -p logs"
  "if [ -f train.pid ] && kill -0 \$(cat train.pid) 2>/dev/null; then echo \"\$(hostname): already training (pid \$(cat train.pid)): run tpu/stop.sh first\" >&2; exit 1; fi"
  "$(quote_all "${environment[@]}") nohup $(quote_all "${train[@]}") >> $log 2>&1 < /dev/null & echo \$! > train.pid"
  "echo \"\$(hostname): training, pid \$(cat train.pid), log ~/$REMOTE_DIR/$log\""
)
script="$(printf '%s; ' "${remote[@]}")"
on_workers all "${script%; }"
note "follow with: tpu/logs.sh --name=$TPU_NAME --zone=$ZONE --project=$PROJECT --follow"
