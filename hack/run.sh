#!/usr/bin/env bash
# make run: start a local control plane with the CRDs installed, a Stripe (stripesim, or real Stripe when
# STRIPE_API_KEY is set), create the credentials Secret, apply config/samples, and run the operator in the foreground
# until Ctrl-C; then stop everything this script started.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

dev="$root/bin/dev"
kubeconfig="$dev/kubeconfig"
mkdir -p "$dev"
rm -f "$kubeconfig"

assets=$(hack/control-plane.sh)
export KUBEBUILDER_ASSETS="$assets"
kubectl="$assets/kubectl"

echo "run: building the operator, the simulator and the local cluster"
go build -o "$dev/localcluster" ./hack/localcluster
go build -o "$dev/stripe-operator" ./cmd/stripe-operator
go build -o "$dev/stripesim" ./cmd/stripesim

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "run: stopped"
}
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM

"$dev/localcluster" -write-kubeconfig "$kubeconfig" > "$dev/localcluster.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  [ -f "$kubeconfig" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$dev/localcluster.log" >&2; exit 1; }
  sleep 0.5
done
[ -f "$kubeconfig" ] || { echo "run: the control plane did not start; see $dev/localcluster.log" >&2; exit 1; }

k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }
operator_flags=()
if [ -n "${STRIPE_API_KEY:-}" ]; then
  echo "run: using real Stripe with the key in STRIPE_API_KEY"
  api_key=$STRIPE_API_KEY
  case "$api_key" in *_live_*) operator_flags+=(--allow-live-mode) ;; esac
else
  sim_addr=127.0.0.1:${STRIPESIM_PORT:-12111}
  "$dev/stripesim" -addr "$sim_addr" > "$dev/stripesim.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/${sim_addr%:*}/${sim_addr#*:}") 2>/dev/null && break; sleep 0.1; done
  api_key=sk_test_local_sandbox
  operator_flags+=(--stripe-api-base "http://$sim_addr")
  echo "run: stripesim (a local Stripe) listens on http://$sim_addr"
fi
k create namespace stripe-operator-system --dry-run=client -o yaml | k apply -f - >/dev/null
k -n stripe-operator-system create secret generic stripe-credentials --from-literal=apiKey="$api_key" \
  --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -k config/samples

cat <<TXT

run: the control plane is up with the CRDs installed and the samples applied.
In another shell:
  export KUBECONFIG=$kubeconfig
  alias kubectl=$kubectl
  kubectl get stripe
Starting the operator; Ctrl-C stops everything.

TXT
"$dev/stripe-operator" --kubeconfig "$kubeconfig" --health-probe-bind-address 127.0.0.1:8081 \
  --metrics-bind-address 127.0.0.1:8080 --webhook-bind-address 127.0.0.1:9443 --zap-devel \
  "${operator_flags[@]}" &
operator=$!
pids+=($operator)
wait "$operator"
