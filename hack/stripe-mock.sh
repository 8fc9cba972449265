#!/usr/bin/env bash
# Installs stripe-mock (Stripe's official, stateless API mock) at the pinned version with `go install`, cached
# outside the checkout like the control plane, and prints the binary's path on the last line of stdout.
set -euo pipefail
version=${STRIPE_MOCK_VERSION:-v0.183.0}
cache=${CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stripe-operator}
dir="$cache/stripe-mock/$version"
if [ ! -x "$dir/stripe-mock" ]; then
  mkdir -p "$dir"
  echo "stripe-mock: installing github.com/stripe/stripe-mock@$version into $dir" >&2
  GOBIN="$dir" go install "github.com/stripe/stripe-mock@$version"
fi
echo "$dir/stripe-mock"
