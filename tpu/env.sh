# Settings shared by the tpu/ scripts; override any of them in the environment before calling.
#   TPU_NAME      name of the TPU VM or queued resource
#   ZONE          e.g. us-central2-b (v4), us-east5-a (v5p), us-west4-a (v5e), us-east5-b (v6e)
#   ACCELERATOR   e.g. v4-8, v4-64, v5p-128, v5litepod-16, v6e-64
#   RUNTIME       TPU VM software version matching the accelerator (see `gcloud compute tpus versions list`)
#   REPO_URL      where the workers clone phi1-jax from; BRANCH the branch or tag
#   PROJECT       gcloud project (default: the active gcloud config)
: "${TPU_NAME:=phi1}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR:=v4-64}"
: "${RUNTIME:=tpu-ubuntu2204-base}"
: "${REPO_URL:=https://github.com/YOUR_ORG/phi1-jax.git}"
: "${BRANCH:=main}"
: "${PROJECT:=$(gcloud config get-value project 2>/dev/null)}"
GCLOUD_TPU=(gcloud compute tpus tpu-vm --project="$PROJECT" --zone="$ZONE")
