#!/usr/bin/env bash
# The local development environment: a control plane built from source with the CRDs installed, a Stripe (stripesim,
# or real Stripe when STRIPE_API_KEY is set), the credentials Secret, and the operator with its webhook receiver.
#
#   hack/dev.sh run    start everything in the foreground (make run); Ctrl-C stops everything it started
#   hack/dev.sh up     the same in the background (make dev-up); returns once everything is ready and writes
#                      $DEV_DIR/env, shell export lines for KUBECONFIG, STRIPE_API_BASE, STRIPESIM_URL, WEBHOOK_URL,
#                      STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET
#   hack/dev.sh down   stop what `up` started (make dev-down)
#
# `up` and `down` are idempotent. Settings, from the environment:
#   DEV_DIR (bin/dev), STRIPESIM_PORT (12111), WEBHOOK_PORT (9443), METRICS_PORT (8080), PROBE_PORT (8081),
#   STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET (use real Stripe; a live key needs ALLOW_LIVE_MODE=1),
#   DEV_SAMPLES (1: apply config/samples).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

dev=${DEV_DIR:-$root/bin/dev}
mkdir -p "$dev"
dev=$(cd "$dev" && pwd)
kubeconfig="$dev/kubeconfig"
sim_port=${STRIPESIM_PORT:-12111}
webhook_port=${WEBHOOK_PORT:-9443}
metrics_port=${METRICS_PORT:-8080}
probe_port=${PROBE_PORT:-8081}
namespace=stripe-operator-system
secret=stripe-credentials

log() { echo "dev: $*" >&2; }

# alive reports whether the background environment recorded in $dev/pid is running.
alive() { [ -f "$dev/pid" ] && kill -0 "$(cat "$dev/pid")" 2>/dev/null; }

# wait_for runs its command until it succeeds, for at most $1 seconds, failing early when the process $2 is gone.
wait_for() {
  local secs=$1 pid=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local background=$1
  rm -f "$kubeconfig" "$dev/env" "$dev/ready"
  assets=$(hack/control-plane.sh)
  export KUBEBUILDER_ASSETS="$assets"
  kubectl="$assets/kubectl"

  log "building the operator, the simulator and the local cluster into $dev"
  go build -o "$dev/localcluster" ./hack/localcluster
  go build -o "$dev/stripe-operator" ./cmd/stripe-operator
  go build -o "$dev/stripesim" ./cmd/stripesim

  pids=()
  cleanup() {
    trap - EXIT INT TERM
    # The operator first, so it does not log the control plane going away; then the rest.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
    rm -f "$dev/env" "$dev/ready" "$dev/pid"
    log "stopped"
  }
  trap cleanup EXIT
  trap 'exit 0' INT TERM

  "$dev/localcluster" -write-kubeconfig "$kubeconfig" >"$dev/localcluster.log" 2>&1 &
  pids+=($!)
  wait_for 120 "${pids[0]}" test -f "$kubeconfig" ||
    { log "the control plane did not start; see $dev/localcluster.log"; tail -20 "$dev/localcluster.log" >&2; exit 1; }
  k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

  local flags=() api_key api_base sim_url="" webhook_url="http://127.0.0.1:$webhook_port/webhooks/stripe"
  if [ -n "${STRIPE_API_KEY:-}" ]; then
    log "using real Stripe with the key in STRIPE_API_KEY"
    api_key=$STRIPE_API_KEY
    api_base=https://api.stripe.com
    case "$api_key" in
      *_live_*) [ "${ALLOW_LIVE_MODE:-}" = 1 ] || { log "STRIPE_API_KEY is a live key; set ALLOW_LIVE_MODE=1 to use it"; exit 1; }
                flags+=(--allow-live-mode) ;;
    esac
  else
    "$dev/stripesim" -addr "127.0.0.1:$sim_port" -strict-payment-methods >"$dev/stripesim.log" 2>&1 &
    pids+=($!)
    wait_for 30 "${pids[-1]}" listening "$sim_port" ||
      { log "stripesim did not start; see $dev/stripesim.log"; tail -20 "$dev/stripesim.log" >&2; exit 1; }
    api_key=sk_test_local_sandbox
    api_base=http://127.0.0.1:$sim_port
    sim_url=$api_base
    # The operator registers its receiver with the simulator and stores the endpoint's signing secret in the Secret.
    flags+=(--stripe-api-base "$api_base" --webhook-public-url "$webhook_url")
  fi
  k create namespace "$namespace" --dry-run=client -o yaml | k apply -f - >/dev/null
  local data=(--from-literal=apiKey="$api_key")
  [ -n "${STRIPE_WEBHOOK_SECRET:-}" ] && data+=(--from-literal=webhookSigningSecrets="$STRIPE_WEBHOOK_SECRET")
  k -n "$namespace" create secret generic "$secret" "${data[@]}" --dry-run=client -o yaml | k apply -f - >/dev/null

  "$dev/stripe-operator" --kubeconfig "$kubeconfig" --health-probe-bind-address "127.0.0.1:$probe_port" \
    --metrics-bind-address "127.0.0.1:$metrics_port" --webhook-bind-address "127.0.0.1:$webhook_port" \
    "${flags[@]}" >"$dev/operator.log" 2>&1 &
  local operator=$!
  pids+=($operator)
  wait_for 60 "$operator" curl -fsS "http://127.0.0.1:$probe_port/readyz" ||
    { log "the operator did not become ready; see $dev/operator.log"; tail -20 "$dev/operator.log" >&2; exit 1; }
  wait_for 30 "$operator" curl -fsS "http://127.0.0.1:$webhook_port/readyz" ||
    { log "the webhook receiver did not become ready; see $dev/operator.log"; exit 1; }
  local whsec=${STRIPE_WEBHOOK_SECRET:-}
  if [ -n "$sim_url" ]; then
    secret_field() {
      k -n "$namespace" get secret "$secret" -o jsonpath='{.data.webhookSigningSecrets}' | base64 -d | cut -d, -f1
    }
    have_secret() { [ -n "$(secret_field)" ]; }
    wait_for 60 "$operator" have_secret ||
      { log "the operator did not register its webhook endpoint; see $dev/operator.log"; exit 1; }
    whsec=$(secret_field)
    log "stripesim delivers webhooks to $webhook_url"
  fi
  if [ "${DEV_SAMPLES:-1}" = 1 ]; then
    k apply -k config/samples >&2
  fi

  umask 077
  cat >"$dev/env" <<ENV
export KUBECONFIG=$kubeconfig
export STRIPE_API_BASE=$api_base
export STRIPESIM_URL=$sim_url
export WEBHOOK_URL=$webhook_url
export STRIPE_API_KEY=$api_key
export STRIPE_WEBHOOK_SECRET=$whsec
export PATH=$assets:\$PATH
ENV
  touch "$dev/ready"
  if [ "$background" = 1 ]; then
    log "ready; logs in $dev"
  else
    cat <<TXT

The control plane, $([ -n "$sim_url" ] && echo "stripesim ($sim_url)" || echo "real Stripe"), the operator and its webhook receiver
($webhook_url) are running, and config/samples is applied. Logs are in $dev. In another shell:

  source $dev/env        # or: export KUBECONFIG=$kubeconfig; export PATH=$assets:\$PATH
  kubectl get stripe
  kubectl wait --for=condition=Ready subscriptions --all --timeout=60s

Ctrl-C stops everything.
TXT
  fi
  wait "$operator" || { log "the operator exited; see $dev/operator.log"; exit 1; }
}

case "${1:-}" in
  run)
    if alive; then log "a background environment is running (make dev-down stops it)"; exit 1; fi
    start 0
    ;;
  __background)
    echo $$ >"$dev/pid"
    start 1
    ;;
  up)
    if alive && [ -f "$dev/ready" ]; then
      log "already up; source $dev/env"
      exit 0
    fi
    "$0" down
    setsid "$0" __background >"$dev/dev.log" 2>&1 </dev/null &
    bg=$!
    until [ -f "$dev/ready" ]; do
      if ! kill -0 "$bg" 2>/dev/null; then
        log "the environment failed to start:"
        tail -30 "$dev/dev.log" >&2
        exit 1
      fi
      sleep 0.2
    done
    log "up; the environment is in $dev/env:"
    cat "$dev/env"
    ;;
  down)
    if [ -f "$dev/pid" ]; then
      pid=$(cat "$dev/pid")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        # Whatever is left of the session (a process that ignored TERM) goes too.
        kill -KILL -- "-$pid" 2>/dev/null || true
      fi
      rm -f "$dev/pid"
      log "down"
    fi
    rm -f "$dev/env" "$dev/ready"
    ;;
  *)
    echo "usage: $0 run|up|down" >&2
    exit 2
    ;;
esac
