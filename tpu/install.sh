#!/usr/bin/env bash
# Clones phi1-jax on every worker of the TPU and installs it with JAX for TPU (libtpu), pinned by
# constraints.txt. Safe to re-run: it pulls and reinstalls only what changed.
#   tpu/install.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"

read -r -d '' REMOTE <<SCRIPT || true
set -euo pipefail
sudo apt-get -qq update && sudo apt-get -qq install -y python3-venv git >/dev/null
if [ -d phi1-jax ]; then git -C phi1-jax fetch -q origin && git -C phi1-jax checkout -q $BRANCH && git -C phi1-jax pull -q --ff-only;
else git clone -q -b $BRANCH $REPO_URL phi1-jax; fi
cd phi1-jax
[ -d .venv ] || python3 -m venv .venv
JAX_VERSION=\$(grep -E '^jax==' constraints.txt | cut -d= -f3)
.venv/bin/pip install -q -c constraints.txt -e . "jax[tpu]==\$JAX_VERSION" \
  -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
.venv/bin/python -c 'import jax; print(jax.process_index(), jax.local_devices())'
SCRIPT

"${GCLOUD_TPU[@]}" ssh "$TPU_NAME" --worker=all --command="$REMOTE"
