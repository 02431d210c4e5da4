#!/usr/bin/env bash
# Installs phi1-jax at one commit on every worker of the TPU at once: clones (or fetches) the
# repository into ~/phi1-jax, checks the commit out, and installs it into ~/phi1-jax/.venv with
# JAX for TPU (libtpu) at the versions pinned in constraints.txt. Safe to re-run.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

USAGE="usage: tpu/install.sh [--repo=URL] [--commit=SHA] [common options]

Runs on every worker (gcloud compute tpus tpu-vm ssh --worker=all): git clone/fetch of URL into
~/$REMOTE_DIR, checkout of SHA, python venv ~/$REMOTE_DIR/.venv with the project and jax[tpu].
Reads this checkout's git remote and HEAD for the defaults; writes nothing locally.
  --repo=URL     [REPO_URL] where workers clone from, default: this checkout's 'origin' remote
  --commit=SHA   [COMMIT] the full 40-hex commit every worker runs, default: this checkout's HEAD
                 (it must be pushed to URL)"

REPO_URL="${REPO_URL:-}"
COMMIT="${COMMIT:-}"
for arg in "$@"; do
  parse_common "$arg" && continue
  case "$arg" in
    --repo | --repo=*) REPO_URL="$(value_of "$arg")" ;;
    --commit | --commit=*) COMMIT="$(value_of "$arg")" ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done
finish_common
[[ -n "$REPO_URL" ]] || REPO_URL="$(git -C "$REPO_DIR" remote get-url origin 2>/dev/null || true)"
[[ -n "$REPO_URL" ]] || usage_error "no repository: pass --repo=URL (this checkout has no 'origin' remote)"
check --repo "$REPO_URL" '^(https://|git@|ssh://)[^[:space:]]+$' "an https://, ssh:// or git@ URL"
[[ -n "$COMMIT" ]] || COMMIT="$(git -C "$REPO_DIR" rev-parse HEAD 2>/dev/null || true)"
check --commit "$COMMIT" '^[0-9a-f]{40}$' "a full 40-hex commit id"

# One line of shell per step, run by each worker's login shell; \$ is expanded there, not here.
remote=(
  "set -e"
  "command -v git >/dev/null && python3 -m venv -h >/dev/null || { sudo apt-get -qq update && sudo apt-get -qq install -y git python3-venv; }"
  "[ -d $REMOTE_DIR/.git ] || git clone -q $(quote "$REPO_URL") $REMOTE_DIR"
  "cd $REMOTE_DIR"
  "git fetch -q origin $COMMIT"
  "git checkout -q --detach $COMMIT"
  "[ -d .venv ] || python3 -m venv .venv"
  ".venv/bin/pip install -q -c constraints.txt -e . \"jax[tpu]==\$(sed -n s/^jax==//p constraints.txt)\" -f https://storage.googleapis.com/jax-releases/libtpu_releases.html"
  "echo \"\$(hostname): $REMOTE_DIR at \$(git rev-parse HEAD), jax \$(.venv/bin/python -c \"import jax; print(jax.__version__)\")\""
)
script="$(printf '%s; ' "${remote[@]}")"
on_workers all "${script%; }"
note "next: tpu/launch.sh --name=$TPU_NAME --zone=$ZONE --project=$PROJECT --workdir=gs://BUCKET/RUN configs/phi1.py"
