package controllers

import (
	"maps"
	"slices"
	"testing"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// stripePortalOf is the Stripe configuration that spec with products makes (what Stripe answers after a create).
func stripePortalOf(spec *billingv1.BillingPortalConfigurationSpec,
	products []billingv1.PortalProductStatus) *stripego.BillingPortalConfiguration {
	f := spec.Features
	cur := &stripego.BillingPortalConfiguration{Active: true,
		BusinessProfile: &stripego.BillingPortalConfigurationBusinessProfile{Headline: spec.BusinessProfile.Headline,
			PrivacyPolicyURL: spec.BusinessProfile.PrivacyPolicyURL},
		Features: &stripego.BillingPortalConfigurationFeatures{
			InvoiceHistory: &stripego.BillingPortalConfigurationFeaturesInvoiceHistory{
				Enabled: f.InvoiceHistory != nil && f.InvoiceHistory.Enabled},
			SubscriptionCancel: &stripego.BillingPortalConfigurationFeaturesSubscriptionCancel{Enabled: true,
				Mode: "at_period_end", ProrationBehavior: "none"},
			SubscriptionUpdate: &stripego.BillingPortalConfigurationFeaturesSubscriptionUpdate{Enabled: true,
				ProrationBehavior: "create_prorations",
				DefaultAllowedUpdates: []stripego.BillingPortalConfigurationFeaturesSubscriptionUpdateDefaultAllowedUpdate{
					"price"}}},
		Metadata: map[string]string{"k8s_uid": "u"}}
	for _, p := range products {
		cur.Features.SubscriptionUpdate.Products = append(cur.Features.SubscriptionUpdate.Products,
			&stripego.BillingPortalConfigurationFeaturesSubscriptionUpdateProduct{Product: p.Product,
				Prices: p.Prices})
	}
	return cur
}

// encoded is the form a params renders, as stripe-go sends it.
func encoded(p *stripego.BillingPortalConfigurationParams) map[string]string {
	values := &form.Values{}
	form.AppendTo(values, p)
	out := map[string]string{}
	for k, v := range values.ToValues() {
		out[k] = v[0]
	}
	return out
}

// portalParams sends everything Stripe requires on a create, nothing when Stripe matches the spec, and on an update
// only the features that differ, each whole (a moved price sends the products again; a disabled feature sends only
// enabled=false).
func TestPortalParams(t *testing.T) {
	spec := &newPortal("ns", "p").Spec
	spec.Features.SubscriptionUpdate = switchTo("monthly")
	stamp := map[string]string{"k8s_uid": "u"}
	products := []billingv1.PortalProductStatus{{Product: "prod_1", Prices: []string{"price_1"}}}

	create, _ := portalParams(spec, products, stamp, nil)
	got := encoded(create)
	for k, want := range map[string]string{"business_profile[headline]": "Acme billing",
		"features[invoice_history][enabled]": "true", "features[payment_method_update][enabled]": "false",
		"features[customer_update][enabled]": "false", "features[subscription_cancel][enabled]": "true",
		"features[subscription_cancel][mode]": "at_period_end", "features[subscription_update][enabled]": "true",
		"features[subscription_update][products][0][product]":   "prod_1",
		"features[subscription_update][products][0][prices][0]": "price_1", "metadata[k8s_uid]": "u"} {
		if got[k] != want {
			t.Errorf("create: %s = %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	if _, ok := got["active"]; ok {
		t.Error("create sends active: a configuration is created active")
	}

	cur := stripePortalOf(spec, products)
	cur.BusinessProfile.TermsOfServiceURL = spec.BusinessProfile.TermsOfServiceURL
	if p, changed := portalParams(spec, products, stamp, cur); len(changed) != 0 || len(encoded(p)) != 0 {
		t.Fatalf("Stripe matches the spec, yet: %v %v", changed, encoded(p))
	}

	moved := []billingv1.PortalProductStatus{{Product: "prod_1", Prices: []string{"price_2"}}}
	p, changed := portalParams(spec, moved, stamp, cur)
	if keys := slices.Sorted(maps.Keys(changed)); !slices.Equal(keys, []string{"features.subscription_update"}) {
		t.Errorf("a moved price changes %v", keys)
	}
	got = encoded(p)
	if got["features[subscription_update][products][0][prices][0]"] != "price_2" ||
		got["features[subscription_update][enabled]"] != "true" ||
		got["features[subscription_update][default_allowed_updates][0]"] != "price" ||
		got["features[invoice_history][enabled]"] != "" || got["business_profile[headline]"] != "" {
		t.Errorf("a moved price sends %v", got)
	}

	off := *spec
	off.Features.SubscriptionUpdate = nil
	off.Active = stripego.Bool(false)
	p, changed = portalParams(&off, nil, stamp, cur)
	got = encoded(p)
	if keys := slices.Sorted(maps.Keys(changed)); !slices.Equal(keys,
		[]string{"active", "features.subscription_update"}) || len(got) != 2 ||
		got["features[subscription_update][enabled]"] != "false" || got["active"] != "false" {
		t.Errorf("disabling subscription updates and the configuration: %v, sends %v", keys, got)
	}
}
