package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// A BillingPortalConfiguration applied with kubectl waits for its Product and Price, becomes Ready with them as the
// products customers may switch to, shows in `kubectl get stripe`, changes in place on a second apply, and on
// deletion is deactivated (Deactivate) or left active (Orphan).
func TestPortalConfiguration(t *testing.T) {
	ns := namespace(t)
	manifest := func(headline string) string {
		var b strings.Builder
		b.WriteString(`---
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: portal-plan}
spec: {name: Portal plan, deletionPolicy: Orphan}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: portal-monthly}
spec: {productRef: {name: portal-plan}, currency: usd, unitAmount: 900, recurring: {interval: month}, deletionPolicy: Orphan}
`)
		for _, policy := range []string{"Deactivate", "Orphan"} {
			fmt.Fprintf(&b, `---
apiVersion: billing.stripe-operator.io/v1
kind: BillingPortalConfiguration
metadata: {name: portal-%s}
spec:
  businessProfile: {headline: %q, privacyPolicyURL: "https://example.com/privacy"}
  features:
    invoiceHistory: {enabled: true}
    subscriptionUpdate:
      enabled: true
      defaultAllowedUpdates: [price]
      products: [{productRef: {name: portal-plan}, prices: [{priceRef: {name: portal-monthly}}]}]
  deletionPolicy: %s
`, strings.ToLower(policy), headline, policy)
		}
		return b.String()
	}
	apply(t, ns, manifest("Acme"))
	objects := []string{"billingportalconfiguration/portal-deactivate", "billingportalconfiguration/portal-orphan"}
	k(t, append([]string{"wait", ready, "--timeout=120s", "-n", ns}, objects...)...)
	out := k(t, "get", "stripe", "-n", ns)
	for _, o := range objects {
		if !strings.Contains(out, "billingportalconfiguration.billing.stripe-operator.io/"+strings.Split(o, "/")[1]) {
			t.Errorf("kubectl get stripe lacks %s:\n%s", o, out)
		}
	}
	ids := map[string]string{}
	price := get(t, ns, "price/portal-monthly", "{.status.id}")
	for _, o := range objects {
		ids[o] = get(t, ns, o, "{.status.id}")
		got := stripe(t, "GET", "/v1/billing_portal/configurations/"+ids[o], nil)
		if got["active"] != true || field(got, "business_profile", "headline") != "Acme" ||
			field(got, "features", "subscription_update", "products", 0, "prices", 0) != price {
			t.Errorf("Stripe's configuration of %s: %v", o, got)
		}
	}

	apply(t, ns, manifest("Acme, updated"))
	k(t, append([]string{"wait", "--for=jsonpath={.status.observedGeneration}=2", "--timeout=60s", "-n", ns},
		objects...)...)
	k(t, append([]string{"wait", ready, "--timeout=60s", "-n", ns}, objects...)...)
	for _, o := range objects {
		if id := get(t, ns, o, "{.status.id}"); id != ids[o] {
			t.Errorf("%s was replaced on update: %s -> %s", o, ids[o], id)
		}
		got := stripe(t, "GET", "/v1/billing_portal/configurations/"+ids[o], nil)
		if field(got, "business_profile", "headline") != "Acme, updated" {
			t.Errorf("%s not updated in Stripe: %v", o, got["business_profile"])
		}
	}

	k(t, "delete", "-n", ns, "billingportalconfiguration", "--all", "--timeout=60s")
	for o, want := range map[string]bool{objects[0]: false, objects[1]: true} {
		if got := stripe(t, "GET", "/v1/billing_portal/configurations/"+ids[o], nil); got["active"] != want {
			t.Errorf("%s after deletion: active = %v, want %v", o, got["active"], want)
		}
	}
}
