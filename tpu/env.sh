# shellcheck shell=bash disable=SC2034  # (its variables are read by the scripts that source it)
# Sourced by every tpu/*.sh (never run): the options they share, argument checks, and --dry-run.
#
# Each setting comes from a flag, else from the environment variable in brackets, else a default:
#   --name=NAME        [TPU_NAME]  TPU VM (or queued resource) name, default phi1
#   --zone=ZONE        [ZONE]      default us-central2-b (v4); v5e: us-west4-a, v5p: us-east5-a
#   --project=PROJECT  [PROJECT]   default: gcloud's active project
#   --dry-run                      print the gcloud commands, one per line, and run nothing
#
# A script calls `parse_common "$arg" || <its own options>` per argument, then `finish_common`,
# and runs every gcloud command through `run`, which prints instead of running under --dry-run.

TPU_NAME="${TPU_NAME:-phi1}"
ZONE="${ZONE:-us-central2-b}"
PROJECT="${PROJECT:-}"
DRY_RUN=0
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TPU_VM=(gcloud compute tpus tpu-vm)
# Where install.sh puts the project on each worker (relative to the ssh user's home).
REMOTE_DIR=phi1-jax

COMMON_HELP="common options (environment variable in brackets):
  --name=NAME        TPU VM or queued-resource name [TPU_NAME, default phi1]
  --zone=ZONE        zone [ZONE, default us-central2-b]
  --project=PROJECT  GCP project [PROJECT, default: gcloud config get-value project]
  --dry-run          print the gcloud commands, one per line, and run nothing
  -h, --help         this help"

# usage_error MESSAGE: the message, the script's synopsis, exit status 2.
usage_error() {
  local script
  script="$(basename "$0")"
  printf '%s: error: %s\n%s\nrun %s --help for all options\n' "$script" "$1" "$(synopsis)" "$script" >&2
  exit 2
}

# synopsis: the first line of the script's USAGE.
synopsis() {
  printf '%s\n' "${USAGE%%$'\n'*}"
}

# value_of ARG: the VALUE of --option=VALUE; an empty value or a missing "=" is a usage error.
value_of() {
  [[ "$1" == *=* && -n "${1#*=}" ]] || usage_error "${1%%=*} needs a value: ${1%%=*}=VALUE"
  printf '%s' "${1#*=}"
}

# check NAME VALUE REGEX WHAT: a usage error unless VALUE matches REGEX.
check() {
  [[ "$2" =~ $3 ]] || usage_error "bad $1 '$2': expected $4"
}

# parse_common ARG: handles the options every script takes; returns 1 for any other argument.
parse_common() {
  case "$1" in
    -h | --help) printf '%s\n\n%s\n' "$USAGE" "$COMMON_HELP"; exit 0 ;;
    --dry-run) DRY_RUN=1 ;;
    --name | --name=*) TPU_NAME="$(value_of "$1")" ;;
    --zone | --zone=*) ZONE="$(value_of "$1")" ;;
    --project | --project=*) PROJECT="$(value_of "$1")" ;;
    *) return 1 ;;
  esac
}

# finish_common: checks the shared settings once every argument is parsed.
finish_common() {
  check --name "$TPU_NAME" '^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$' "lower-case letters, digits and '-'"
  check --zone "$ZONE" '^[a-z]+-[a-z]+[0-9]+-[a-z]$' "a zone such as us-central2-b"
  if [[ -z "$PROJECT" ]] && command -v gcloud >/dev/null; then
    PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
  fi
  [[ -n "$PROJECT" ]] || usage_error "no project: pass --project=ID, set PROJECT, or run 'gcloud config set project ID'"
  check --project "$PROJECT" '^[a-z][-a-z0-9]{4,28}[a-z0-9]$' "a GCP project id"
}

# quote WORD: WORD as a shell word, bare when that is safe, else in single quotes.
quote() {
  if [[ "$1" =~ ^[-A-Za-z0-9_./:=@%+,]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# quote_all WORD...: the words quoted and joined by spaces: one command line.
quote_all() {
  local line="" word
  for word in "$@"; do
    line+="${line:+ }$(quote "$word")"
  done
  printf '%s' "$line"
}

# run COMMAND...: runs it, or under --dry-run prints it as one line that a shell would run as is.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%s\n' "$(quote_all "$@")"
  else
    "$@"
  fi
}

# on_workers WORKER COMMAND: runs the shell COMMAND over ssh on one worker or on all of them at once.
on_workers() {
  run "${TPU_VM[@]}" ssh "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" --worker="$1" --command="$2"
}

# note MESSAGE: a hint for the user on stderr, so that --dry-run's stdout holds only commands.
note() {
  [[ "$DRY_RUN" == 1 ]] || printf '%s\n' "$*" >&2
}
