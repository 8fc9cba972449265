# stripe-operator: a Kubernetes operator that makes Stripe billing declarative.
# `make help` lists the targets. `make run` and `make test` do all their own set-up on a fresh machine.

IMG ?= stripe-operator:dev

# Tools are installed into bin/ at pinned versions; the control plane is cached outside the checkout.
LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)

# go test flags; `make test GOTESTFLAGS=-v` for more output.
GOTESTFLAGS ?=

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers in api/ and the code; copy them into the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	hack/chart-sync.sh

.PHONY: generate
generate: controller-gen ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (test/helm is a module of its own, so that the Helm SDK stays out of the operator's go.mod).
	go vet ./...
	go vet -tags node ./test/node/
	cd test/helm && go vet ./...
	cd hack/tools/image && go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint on every module.
	$(GOLANGCI_LINT) run
	$(GOLANGCI_LINT) run --build-tags node ./test/node/...
	cd test/helm && $(GOLANGCI_LINT) run
	cd hack/tools/image && $(GOLANGCI_LINT) run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes.
	$(GOLANGCI_LINT) run --fix

.PHONY: verify
verify: manifests generate ## Regenerate code and manifests and fail on any difference; fail on an untidy go.mod.
	hack/verify.sh

.PHONY: control-plane
control-plane: ## Build (or reuse) kube-apiserver, etcd and kubectl from source; print their directory.
	@hack/control-plane.sh

.PHONY: test
test: manifests generate fmt vet ## Run every test against a real API server built from source, and stripe-mock.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" STRIPE_MOCK="$$(hack/stripe-mock.sh)" \
		go test $(GOTESTFLAGS) -count=1 ./...
	cd test/helm && KUBEBUILDER_ASSETS="$$(../../hack/control-plane.sh)" go test $(GOTESTFLAGS) -count=1 ./...
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test -race -count=1 -run 'Concurrent' ./webhookreceiver/
	go test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime 5000x ./webhookreceiver/
	go test -run '^$$' -fuzz '^FuzzSignatureHeader$$' -fuzztime 20000x ./webhookreceiver/
	$(MAKE) test-node

.PHONY: test-node
test-node: manifests helm ## Run the node suite (test/node, root): the chart and dist/install.yaml on real pods.
	HELM=$(HELM) go test $(GOTESTFLAGS) -tags node -count=1 -timeout 30m ./test/node/

.PHONY: test-chaos
test-chaos: manifests ## Run the chaos suite alone, verbose (CHAOS_N scales it; default 500).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test -count=1 -v -timeout 20m ./test/chaos/

.PHONY: bench
bench: manifests ## Run the benchmarks and print their figures as JSON lines (BENCH_QUICK=1 for a short run).
	go test -run '^$$' -bench . -benchtime 3s ./internal/stripesim/
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test -run '^$$' -bench . -benchtime 1x -timeout 120m ./test/bench/

.PHONY: node-up
node-up: ## Start a single-node cluster that runs real pods (root; hack/node.sh); writes bin/node/env.
	hack/node.sh up

.PHONY: node-down
node-down: ## Stop the node make node-up started and undo its changes to the host.
	hack/node.sh down

.PHONY: node-load
node-load: image ## Import dist/stripe-operator.oci.tar (make image) into the node's containerd.
	hack/node.sh load dist/stripe-operator.oci.tar

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the operator and the simulator into bin/.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/stripe-operator ./cmd/stripe-operator
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/stripesim ./cmd/stripesim

.PHONY: stripesim
stripesim: ## Run the Stripe simulator on 127.0.0.1:12111 (STRIPESIM_FLAGS for more flags).
	go run ./cmd/stripesim -addr 127.0.0.1:12111 $(STRIPESIM_FLAGS)

.PHONY: run
run: manifests generate ## Start a control plane, stripesim and the operator with its receiver, apply the samples; Ctrl-C stops.
	hack/dev.sh run

.PHONY: dev-up
dev-up: manifests generate ## Start the same environment as `make run` in the background and write bin/dev/env.
	hack/dev.sh up

.PHONY: dev-down
dev-down: ## Stop the environment `make dev-up` started.
	hack/dev.sh down

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: image
image: ## Build the container image without Docker into dist/stripe-operator.oci.tar (an OCI archive named $(IMG)).
	IMG=$(IMG) hack/image.sh dist/stripe-operator.oci.tar

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster in ~/.kube/config (or KUBECONFIG).
	kubectl apply --server-side -f config/crd/bases

.PHONY: install-manifest
install-manifest: manifests ## Write dist/install.yaml: config/default rendered, for `kubectl apply --server-side -f`.
	hack/install-manifest.sh dist/install.yaml

.PHONY: helm-lint
helm-lint: manifests ## Lint the Helm chart and render it with its defaults (with the Helm SDK, no helm binary needed).
	cd test/helm && KUBEBUILDER_ASSETS="$$(../../hack/control-plane.sh)" go test -count=1 -run 'TestChartLints|TestChartRefusesWrongValues' ./...

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster.
	kubectl delete --ignore-not-found -f config/crd/bases

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen at its pinned version.
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint at its pinned version.
$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: helm
helm: $(HELM) ## Install the helm CLI at its pinned version (the version test/helm's SDK is), as bin/helm-<version>.
$(HELM): | $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

# go-install-tool installs package $(2) at version $(3) as $(1), the versioned name, so a version bump reinstalls.
define go-install-tool
@set -e; \
echo "Installing $(2)@$(3)"; \
tmp=$$(mktemp -d); \
GOBIN=$$tmp go install $(2)@$(3); \
mv -f $$tmp/$$(basename $(2)) $(1); \
rm -rf $$tmp
endef
