#!/usr/bin/env bash
# make verify: after `make manifests generate` (the Makefile runs them first), fail if generated code or manifests
# differ from what is committed, or if a go.mod is untidy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
generated=(config/crd config/rbac api/v1/zz_generated.deepcopy.go charts/stripe-operator/crds charts/stripe-operator/files)
if ! git diff --exit-code --stat -- "${generated[@]}"; then
  echo "verify: generated files differ from the commit; run 'make manifests generate' and commit the result" >&2
  status=1
fi
untracked=$(git ls-files --others --exclude-standard -- "${generated[@]}")
if [ -n "$untracked" ]; then
  echo "verify: generated files not committed: $untracked" >&2
  status=1
fi
for mod in . hack/tools/kube hack/tools/etcd hack/tools/image test/helm; do
  if ! (cd "$mod" && go mod tidy -diff >/dev/null); then
    echo "verify: $mod/go.mod is not tidy; run 'go mod tidy' there" >&2
    status=1
  fi
done
exit $status
