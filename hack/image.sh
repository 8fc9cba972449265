#!/usr/bin/env bash
# Builds the operator's container image without a Docker daemon: a static binary (as the Dockerfile builds it) put on
# a distroless-like base by hack/tools/image (go-containerregistry), written as an OCI archive. `make image` runs it.
#
#   hack/image.sh [output]      default dist/stripe-operator.oci.tar; IMG names the image (default stripe-operator:dev)
#
# Load it with `podman load -i dist/stripe-operator.oci.tar`, or push it with
# `skopeo copy oci-archive:dist/stripe-operator.oci.tar docker://registry.example.com/stripe-operator:v0.1.0`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/dist/stripe-operator.oci.tar}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
arch=${GOARCH:-$(go env GOARCH)}
zoneinfo=/usr/share/zoneinfo # Debian's tzdata, as distroless ships it; left out where the machine has none
[ -d "$zoneinfo" ] || zoneinfo=""

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" \
  go build -trimpath -ldflags='-s -w' -o "$work/stripe-operator" ./cmd/stripe-operator)
(cd "$root/hack/tools/image" && go run . -binary "$work/stripe-operator" -o "$out" -arch "$arch" -zoneinfo "$zoneinfo" \
  -ref "${IMG:-stripe-operator:dev}")
echo "$out"
