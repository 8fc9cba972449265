package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// The sample Product grants the sample EntitlementFeature, and the sample Customer's subscription is trialing: a
// controller waiting for the feature with kubectl, exactly as the README shows, sees it.
func TestCustomerEntitlementsGateAFeature(t *testing.T) {
	k(t, "wait", ready, "--timeout=120s", "-n", "default", "entitlementfeature/analytics", "product/pro-plan")
	if out := k(t, "get", "stripe", "-n", "default"); !strings.Contains(out,
		"entitlementfeature.billing.stripe-operator.io/analytics") || !strings.Contains(out, "LOOKUP KEY") {
		t.Errorf("kubectl get stripe lacks the EntitlementFeature:\n%s", out)
	}
	k(t, "wait", "-n", "default", "customer/acme", `--for=jsonpath={.status.entitlements[?(@=="analytics")]}=analytics`,
		"--timeout=120s")
	if at := get(t, "default", "customer/acme", "{.status.entitlementsConfirmedAt}"); at == "" {
		t.Error("the entitlements carry no confirmation time")
	}
	prod := get(t, "default", "product/pro-plan", "{.status.id}")
	features := stripe(t, "GET", "/v1/products/"+prod+"/features", nil)
	if field(features, "data", 0, "entitlement_feature", "lookup_key") != "analytics" {
		t.Errorf("Stripe's product features: %v", features)
	}
}

// An EntitlementFeature applied with kubectl is created in Stripe; deleted, it is archived (Archive, the default).
func TestEntitlementFeatureApplyAndDelete(t *testing.T) {
	ns := namespace(t)
	apply(t, ns, fmt.Sprintf(`apiVersion: billing.stripe-operator.io/v1
kind: EntitlementFeature
metadata: {name: exports}
spec: {name: CSV exports, lookupKey: %s-exports}
`, ns))
	k(t, "wait", ready, "--timeout=60s", "-n", ns, "entitlementfeature/exports")
	id := get(t, ns, "entitlementfeature/exports", "{.status.id}")
	if got := stripe(t, "GET", "/v1/entitlements/features/"+id, nil); got["lookup_key"] != ns+"-exports" ||
		got["active"] != true {
		t.Fatalf("Stripe's feature: %v", got)
	}
	k(t, "delete", "-n", ns, "entitlementfeature/exports", "--timeout=60s")
	if got := stripe(t, "GET", "/v1/entitlements/features/"+id, nil); got["active"] != false {
		t.Errorf("a deleted feature is still active: %v", got)
	}
}
