#!/usr/bin/env bash
# make run: start a local control plane with the CRDs installed, apply config/samples, and run the operator in the
# foreground until Ctrl-C; then stop everything this script started.
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

echo "run: building the operator and the local cluster"
go build -o "$dev/localcluster" ./hack/localcluster
go build -o "$dev/stripe-operator" ./cmd/stripe-operator

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

"$kubectl" --kubeconfig "$kubeconfig" apply -k config/samples

cat <<TXT

run: the control plane is up with the CRDs installed and the samples applied.
In another shell:
  export KUBECONFIG=$kubeconfig
  alias kubectl=$kubectl
  kubectl get stripe
Starting the operator; Ctrl-C stops everything.

TXT
"$dev/stripe-operator" --kubeconfig "$kubeconfig" --health-probe-bind-address 127.0.0.1:8081 \
  --metrics-bind-address 127.0.0.1:8080 --zap-devel &
pids+=($!)
wait "${pids[1]}"
