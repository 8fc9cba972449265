#!/usr/bin/env bash
# Copies what config/ holds into the Helm chart, so that one source feeds both (`make manifests` runs it after
# controller-gen): the CRDs into charts/stripe-operator/crds/, and into charts/stripe-operator/files/ the manager's
# generated RBAC rules, the Prometheus alerts and the Argo CD health check, which the chart's templates read with
# .Files.Get. Never edit the copies; `make verify` fails when they differ from config/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chart="$root/charts/stripe-operator"

rm -rf "$chart/crds"
mkdir -p "$chart/crds" "$chart/files"
cp "$root"/config/crd/bases/*.yaml "$chart/crds/"
cp "$root/config/rbac/role.yaml" "$root/config/prometheus/alerts.yaml" "$root/config/argocd/health.lua" "$chart/files/"
