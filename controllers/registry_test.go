package controllers

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// Every registered kind can be a StripeEvent's target: the CRD's enum of status.target.kind names each one (a kind
// missing there makes the worker's every fold into it fail validation).
func TestEveryKindCanBeAnEventTarget(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases",
		"billing.stripe-operator.io_stripeevents.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, crd); err != nil {
		t.Fatal(err)
	}
	kind := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Properties["target"].Properties["kind"]
	enum := make([]string, 0, len(kind.Enum))
	for _, v := range kind.Enum {
		enum = append(enum, string(v.Raw[1:len(v.Raw)-1]))
	}
	for _, k := range kinds {
		if !slices.Contains(enum, k.kind) {
			t.Errorf("status.target.kind of StripeEvent does not allow %s (enum %v)", k.kind, enum)
		}
	}
}
