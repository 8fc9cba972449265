#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from source through the Go module proxy and caches them outside the
# checkout, keyed by version, so every clone on this machine reuses them. Prints the directory that holds the three
# binaries (what envtest reads as KUBEBUILDER_ASSETS) on its last line of stdout.
#
#   hack/control-plane.sh            build if missing, print the directory
#   hack/control-plane.sh node       the same, and also the node's components (kubelet, kube-controller-manager,
#                                    kube-scheduler, kube-proxy) into the same directory, for hack/node.sh
#   CONTROL_PLANE_CACHE=/some/dir    where the cache lives (default: $XDG_CACHE_HOME or ~/.cache, /stripe-operator)
#
# The versions are the ones pinned by hack/tools/kube/go.mod (k8s.io/kubernetes, matching client-go in go.mod) and
# hack/tools/etcd/go.mod (the etcd that Kubernetes release pins). A cold build takes about 10 minutes on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kube_mod="$root/hack/tools/kube"
etcd_mod="$root/hack/tools/etcd"

modver() { awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print $NF; exit }' "$1/go.mod"; }
k8s_version=$(modver "$kube_mod" k8s.io/kubernetes)
etcd_version=$(modver "$etcd_mod" go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] || { echo "control-plane: cannot read pinned versions" >&2; exit 1; }

cache=${CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stripe-operator}
dir="$cache/control-plane/k8s-$k8s_version-etcd-$etcd_version-$(go env GOOS)-$(go env GOARCH)"

wanted=(etcd kube-apiserver kubectl)
[ "${1:-}" = node ] && wanted+=(kube-controller-manager kube-scheduler kube-proxy kubelet)
complete() {
  local b
  for b in "${wanted[@]}"; do [ -x "$dir/$b" ] || return 1; done
}
if complete; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
# One builder at a time per cache: a second caller waits for the first instead of building again.
exec 9>"$dir.lock"
flock 9
if complete; then
  echo "$dir"
  exit 0
fi

echo "control-plane: building ${wanted[*]} (Kubernetes $k8s_version, etcd $etcd_version) from source into $dir" \
  "(about 10 minutes cold; the node's components add about 3 minutes)" >&2
start=$(date +%s)
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# Stamp the release version so `kubectl version` and the API server's /version tell the truth.
minor=${k8s_version#v1.}; minor=${minor%%.*}
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
build() { # build <module dir> <output> <package> <ldflags>; skipped when the binary is there
  [ -x "$dir/$2" ] && return 0
  local tmp="$dir/.$2.tmp"
  (cd "$1" && go build -trimpath -ldflags="$4" -o "$tmp" "$3")
  mv -f "$tmp" "$dir/$2"
}
for b in "${wanted[@]}"; do
  case $b in
    etcd) build "$etcd_mod" etcd . "-s -w" ;;
    *) build "$kube_mod" "$b" "k8s.io/kubernetes/cmd/$b" "$kube_ldflags" ;;
  esac
done
echo "control-plane: built in $(( $(date +%s) - start ))s" >&2
echo "$dir"
