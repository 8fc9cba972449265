#!/usr/bin/env bash
# Renders config/default (CRDs, RBAC, the Deployment, Services, PDB and NetworkPolicy in stripe-operator-system) into
# one file, dist/install.yaml by default, with the kubectl built by hack/control-plane.sh (its kustomize is the one
# the tests render config/default with). `make install-manifest` runs it after `make manifests`.
#
#   hack/install-manifest.sh [output]     KUBECTL=/path/to/kubectl to use another kubectl
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/dist/install.yaml}
kubectl=${KUBECTL:-"$("$root/hack/control-plane.sh")/kubectl"}

mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$kubectl" kustomize "$root/config/default" >"$tmp"
chmod 0644 "$tmp" # mktemp creates it 0600
mv -f "$tmp" "$out"
trap - EXIT
echo "$out"
