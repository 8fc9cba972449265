package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// newPortal is a portal configuration with a business profile, invoice history and cancellation at period end.
func newPortal(ns, name string) *billingv1.BillingPortalConfiguration {
	return &billingv1.BillingPortalConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.BillingPortalConfigurationSpec{
			BusinessProfile: &billingv1.PortalBusinessProfile{Headline: "Acme billing",
				PrivacyPolicyURL: "https://example.com/privacy", TermsOfServiceURL: "https://example.com/terms"},
			Features: billingv1.PortalFeatures{
				InvoiceHistory:     &billingv1.PortalFeatureToggle{Enabled: true},
				SubscriptionCancel: &billingv1.PortalSubscriptionCancel{Enabled: true, Mode: "at_period_end"},
			},
		}}
}

// switchTo lets the portal's customers switch between the Product "plan" and its Prices named.
func switchTo(prices ...string) *billingv1.PortalSubscriptionUpdate {
	su := &billingv1.PortalSubscriptionUpdate{Enabled: true, DefaultAllowedUpdates: []string{"price"},
		ProrationBehavior: "create_prorations"}
	p := billingv1.PortalProduct{ProductRef: &billingv1.LocalObjectReference{Name: "plan"}}
	for _, name := range prices {
		p.Prices = append(p.Prices, billingv1.PriceReference{PriceRef: &billingv1.LocalObjectReference{Name: name}})
	}
	su.Products = []billingv1.PortalProduct{p}
	return su
}

func stripePortal(t *testing.T, id string) *stripego.BillingPortalConfiguration {
	t.Helper()
	pc, err := simClient().API.BillingPortalConfigurations.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// portalPrices are the price IDs a Stripe configuration lets customers switch to.
func portalPrices(pc *stripego.BillingPortalConfiguration) []string {
	var out []string
	for _, p := range pc.Features.SubscriptionUpdate.Products {
		out = append(out, p.Prices...)
	}
	return out
}

// checkCreatedPortal checks the Stripe configuration newPortal with switchTo(prices) made.
func checkCreatedPortal(t *testing.T, portal *billingv1.BillingPortalConfiguration, prices ...string) {
	t.Helper()
	got := stripePortal(t, portal.Status.ID)
	if !strings.HasPrefix(got.ID, "bpc_") || !got.Active || got.BusinessProfile.Headline != "Acme billing" ||
		got.BusinessProfile.TermsOfServiceURL != "https://example.com/terms" || !got.Features.InvoiceHistory.Enabled ||
		got.Features.PaymentMethodUpdate.Enabled || !got.Features.SubscriptionCancel.Enabled ||
		!got.Features.SubscriptionUpdate.Enabled || !slices.Equal(portalPrices(got), prices) ||
		string(got.Features.SubscriptionUpdate.ProrationBehavior) != "create_prorations" ||
		got.Metadata["team"] != "billing" || got.Metadata[billingv1.MetadataUID] != string(portal.UID) {
		t.Fatalf("Stripe configuration: %+v", got)
	}
}

// A BillingPortalConfiguration whose subscriptionUpdate references a Product and Prices waits for their Stripe IDs,
// is then created with them, is updated in place (same Stripe ID), follows a referenced Price that rolled to its
// successor, and is deactivated on deletion (Deactivate, the default). One Stripe object in all.
func TestPortalCreateUpdateFollowAndDeactivate(t *testing.T) {
	ctx, ns := newNamespace(t)
	portal := newPortal(ns, "portal")
	portal.Spec.Features.SubscriptionUpdate = switchTo("monthly", "yearly")
	portal.Spec.Metadata = billingv1.Metadata{"team": "billing"}
	create(t, portal)
	waitReason(t, ctx, portal, billingv1.ReasonDependencyNotReady)

	yearly := newPrice(ns, "yearly", 10000)
	yearly.Spec.Recurring.Interval = billingv1.IntervalYear
	monthly := newPrice(ns, "monthly", 1000)
	create(t, newProduct(ns, "plan"), monthly, yearly)
	portal = waitReady(t, ctx, portal)
	monthly, yearly = waitReady(t, ctx, monthly), waitReady(t, ctx, yearly)
	first := portal.Status.ID
	checkCreatedPortal(t, portal, monthly.Status.ID, yearly.Status.ID)

	if err := updateSpec(portal, func(p *billingv1.BillingPortalConfiguration) {
		p.Spec.BusinessProfile.Headline = "Manage your Acme plan"
		p.Spec.BusinessProfile.PrivacyPolicyURL = ""
		p.Spec.DefaultReturnURL = "https://example.com/account"
		p.Spec.Features.CustomerUpdate = &billingv1.PortalCustomerUpdate{Enabled: true,
			AllowedUpdates: []string{"email", "tax_id"}}
		p.Spec.Features.SubscriptionCancel = &billingv1.PortalSubscriptionCancel{Enabled: true, Mode: "immediately",
			ProrationBehavior: "create_prorations"}
		p.Spec.Features.SubscriptionUpdate = switchTo("monthly")
		p.Spec.Metadata = nil
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		got := stripePortal(t, first)
		if got.BusinessProfile.Headline != "Manage your Acme plan" || got.BusinessProfile.PrivacyPolicyURL != "" ||
			got.DefaultReturnURL != "https://example.com/account" || !got.Features.CustomerUpdate.Enabled ||
			len(got.Features.CustomerUpdate.AllowedUpdates) != 2 ||
			got.Features.SubscriptionCancel.Mode != "immediately" ||
			!slices.Equal(portalPrices(got), []string{monthly.Status.ID}) || got.Metadata["team"] != "" {
			return fmt.Errorf("not updated yet: %+v", got)
		}
		return nil
	})
	portal = waitReady(t, ctx, portal)
	if portal.Status.ID != first {
		t.Fatalf("an update replaced the configuration: %s -> %s", first, portal.Status.ID)
	}

	// The Price's amount changes: it rolls to a successor, and the configuration moves to it.
	if err := updateSpec(monthly, func(p *billingv1.Price) { p.Spec.UnitAmount = 1200 }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(monthly), monthly); err != nil {
			return err
		}
		if len(monthly.Status.PreviousIDs) == 0 {
			return fmt.Errorf("the Price has not rolled yet")
		}
		if got := portalPrices(stripePortal(t, first)); !slices.Equal(got, []string{monthly.Status.ID}) {
			return fmt.Errorf("the configuration offers %v, want the successor %s", got, monthly.Status.ID)
		}
		return nil
	})
	portal = waitReady(t, ctx, portal)
	if len(portal.Status.Products) != 1 || !slices.Equal(portal.Status.Products[0].Prices,
		[]string{monthly.Status.ID}) {
		t.Errorf("status.products: %+v", portal.Status.Products)
	}

	if err := env.Client.Delete(ctx, portal); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, portal)
	if stripePortal(t, first).Active {
		t.Error("Deactivate left the configuration active")
	}
	if n := sim.ObjectsByUID()["billing_portal.configuration"][string(portal.UID)]; n != 1 {
		t.Errorf("%d Stripe configurations for the object, want 1", n)
	}
}

// A configuration whose create commits in Stripe and then fails is found again by its stamp, not created twice; an
// inactive spec is applied after the create.
func TestPortalCrashSafeCreate(t *testing.T) {
	ctx, ns := newNamespace(t)
	faults := addFaults(t, stripesim.Fault{Kind: stripesim.FaultCommitThenFail, Method: "POST",
		Path: "/v1/billing_portal/configurations", Count: 1})
	portal := newPortal(ns, "inactive")
	portal.Spec.Active = ptr.To(false)
	create(t, portal)
	portal = waitReady(t, ctx, portal)
	if firedTimes(faults) != 1 {
		t.Fatal("the fault did not fire")
	}
	if stripePortal(t, portal.Status.ID).Active {
		t.Error("active: false was not applied")
	}
	if n := sim.ObjectsByUID()["billing_portal.configuration"][string(portal.UID)]; n != 1 {
		t.Errorf("%d Stripe configurations after a commit-then-fail create, want 1", n)
	}
}

// A BillingPortalConfiguration adopts an existing configuration and brings it to the spec; Orphan leaves it active
// on deletion. The account's default configuration (the Dashboard's) is adopted too, and Deactivate leaves it
// active, as Stripe cannot deactivate it.
func TestPortalAdoptOrphanAndDefault(t *testing.T) {
	ctx, ns := newNamespace(t)
	existing, err := simClient().API.BillingPortalConfigurations.New(&stripego.BillingPortalConfigurationParams{
		BusinessProfile: &stripego.BillingPortalConfigurationBusinessProfileParams{
			Headline: stripego.String("Made by hand")},
		Features: &stripego.BillingPortalConfigurationFeaturesParams{
			PaymentMethodUpdate: &stripego.BillingPortalConfigurationFeaturesPaymentMethodUpdateParams{
				Enabled: stripego.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	portal := newPortal(ns, "adopted")
	portal.Spec.DeletionPolicy = billingv1.PortalOrphan
	portal.Spec.Adopt = &billingv1.BillingPortalConfigurationAdopt{ID: existing.ID}
	create(t, portal)
	portal = waitReady(t, ctx, portal)
	got := stripePortal(t, existing.ID)
	if portal.Status.ID != existing.ID || got.BusinessProfile.Headline != "Acme billing" ||
		got.Features.PaymentMethodUpdate.Enabled || !got.Features.InvoiceHistory.Enabled ||
		got.Metadata[billingv1.MetadataUID] != string(portal.UID) {
		t.Fatalf("adopted: %s %+v", portal.Status.ID, got)
	}
	if err := env.Client.Delete(ctx, portal); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, portal)
	if !stripePortal(t, existing.ID).Active {
		t.Error("Orphan deactivated the configuration")
	}

	def, _ := sim.SaveDashboardPortalSettings(stripesim.DefaultAccount, false)
	dflt := newPortal(ns, "default")
	dflt.Spec.Adopt = &billingv1.BillingPortalConfigurationAdopt{ID: def}
	create(t, dflt)
	dflt = waitReady(t, ctx, dflt)
	if !dflt.Status.IsDefault || stripePortal(t, def).BusinessProfile.Headline != "Acme billing" {
		t.Fatalf("adopted default: %+v", dflt.Status)
	}
	if err := env.Client.Delete(ctx, dflt); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, dflt)
	if !stripePortal(t, def).Active {
		t.Error("the default configuration was deactivated")
	}
}

// Stripe refuses a price that does not belong to its product: the object is Stalled with Stripe's message, and
// nothing is created.
func TestPortalStripeValidationStalls(t *testing.T) {
	ctx, ns := newNamespace(t)
	other := newPrice(ns, "other", 500)
	other.Spec.ProductRef = &billingv1.LocalObjectReference{Name: "other-plan"}
	create(t, newProduct(ns, "plan"), newProduct(ns, "other-plan"), other)
	other = waitReady(t, ctx, other)
	portal := newPortal(ns, "wrong-price")
	portal.Spec.Features.SubscriptionUpdate = &billingv1.PortalSubscriptionUpdate{Enabled: true,
		DefaultAllowedUpdates: []string{"price"}, Products: []billingv1.PortalProduct{{
			ProductRef: &billingv1.LocalObjectReference{Name: "plan"},
			Prices:     []billingv1.PriceReference{{PriceID: other.Status.ID}}}}}
	create(t, portal)
	c := waitReason(t, ctx, portal, billingv1.ReasonInvalidRequest)
	if !strings.Contains(c.Message, "The price "+other.Status.ID+" does not belong to the product") {
		t.Errorf("Stalled message: %s", c.Message)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(portal), portal); err != nil {
		t.Fatal(err)
	}
	if !apimeta.IsStatusConditionTrue(portal.Status.Conditions, billingv1.ConditionStalled) {
		t.Errorf("not Stalled: %+v", portal.Status.Conditions)
	}
	if n := sim.ObjectsByUID()["billing_portal.configuration"][string(portal.UID)]; n != 0 {
		t.Errorf("%d configurations created from a refused spec", n)
	}
}

// A configuration changed in the Dashboard (billing_portal.configuration.updated without the operator's key) is
// restored from its signed webhook event, with a DriftDetected Event.
func TestWebhookPortalDriftIsUndone(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	portal := newPortal(ns, "drifting")
	create(t, portal)
	portal = waitReady(t, ctx, portal)
	if _, err := simClient().API.BillingPortalConfigurations.Update(portal.Status.ID,
		&stripego.BillingPortalConfigurationParams{
			BusinessProfile: &stripego.BillingPortalConfigurationBusinessProfileParams{
				Headline: stripego.String("Edited by hand")},
			Features: &stripego.BillingPortalConfigurationFeaturesParams{
				InvoiceHistory: &stripego.BillingPortalConfigurationFeaturesInvoiceHistoryParams{
					Enabled: stripego.Bool(false)}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripePortal(t, portal.Status.ID); got.BusinessProfile.Headline != "Acme billing" ||
			!got.Features.InvoiceHistory.Enabled {
			return fmt.Errorf("Stripe still has %q, invoice history %v", got.BusinessProfile.Headline,
				got.Features.InvoiceHistory.Enabled)
		}
		return nil
	})
	assertEvent(t, ns, portal.Name, "Warning", "DriftDetected")
}

// An existing configuration adopted with managementPolicy Observe is read and never written: status.drift lists
// what differs. Switching to Manage applies exactly that, in place.
func TestPortalObserveThenManage(t *testing.T) {
	ctx, ns := newNamespace(t)
	existing, err := simClient().API.BillingPortalConfigurations.New(&stripego.BillingPortalConfigurationParams{
		BusinessProfile: &stripego.BillingPortalConfigurationBusinessProfileParams{
			Headline: stripego.String("Acme billing"), PrivacyPolicyURL: stripego.String("https://example.com/privacy"),
			TermsOfServiceURL: stripego.String("https://example.com/old-terms")},
		Features: &stripego.BillingPortalConfigurationFeaturesParams{
			InvoiceHistory: &stripego.BillingPortalConfigurationFeaturesInvoiceHistoryParams{
				Enabled: stripego.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	portal := newPortal(ns, "observed")
	portal.Spec.ManagementPolicy = billingv1.ManagementObserve
	portal.Spec.Adopt = &billingv1.BillingPortalConfigurationAdopt{ID: existing.ID}
	before := writes()
	create(t, portal)
	checkDrifted(t, ctx, portal, existing.ID, []billingv1.FieldDrift{
		{Field: "business_profile.terms_of_service_url", Stripe: "https://example.com/old-terms",
			Spec: "https://example.com/terms"},
		{Field: "features.subscription_cancel", Stripe: "false", Spec: "true;mode=at_period_end;proration_behavior=none"},
	})
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes while observing", n)
	}
	setPolicy(t, ctx, portal, billingv1.ManagementManage)
	checkManaged(t, ctx, portal)
	if got := stripePortal(t, existing.ID); got.BusinessProfile.TermsOfServiceURL != "https://example.com/terms" ||
		!got.Features.SubscriptionCancel.Enabled {
		t.Errorf("Manage did not apply the plan: %+v", got)
	}
}

// The API server refuses a malformed BillingPortalConfiguration with a message naming what is wrong, and a change
// of adopt.
func TestPortalSchema(t *testing.T) {
	ctx, ns := newNamespace(t)
	for _, tc := range []struct {
		mutate func(*billingv1.BillingPortalConfiguration)
		want   string
	}{
		{func(p *billingv1.BillingPortalConfiguration) {
			p.Spec.Features.SubscriptionUpdate = &billingv1.PortalSubscriptionUpdate{Enabled: true}
		}, "subscriptionUpdate needs at least one product when enabled"},
		{func(p *billingv1.BillingPortalConfiguration) {
			p.Spec.Features.SubscriptionUpdate = switchTo("monthly")
			p.Spec.Features.SubscriptionUpdate.Products[0].ProductID = "prod_abc"
		}, "each product needs exactly one of productRef or productID"},
		{func(p *billingv1.BillingPortalConfiguration) {
			p.Spec.Features.SubscriptionUpdate = switchTo("monthly")
			p.Spec.Features.SubscriptionUpdate.Products[0].Prices[0].PriceID = "price_abc"
		}, "each price needs exactly one of priceRef or priceID"},
		{func(p *billingv1.BillingPortalConfiguration) { p.Spec.BusinessProfile.PrivacyPolicyURL = "example.com" },
			"spec.businessProfile.privacyPolicyURL"},
		{func(p *billingv1.BillingPortalConfiguration) {
			p.Spec.BusinessProfile.Headline = strings.Repeat("x", 61)
		},
			"spec.businessProfile.headline"},
		{func(p *billingv1.BillingPortalConfiguration) { p.Spec.Features.SubscriptionCancel.Mode = "later" },
			"spec.features.subscriptionCancel.mode"},
		{func(p *billingv1.BillingPortalConfiguration) {
			p.Spec.Features.CustomerUpdate = &billingv1.PortalCustomerUpdate{Enabled: true,
				AllowedUpdates: []string{"password"}}
		}, "spec.features.customerUpdate.allowedUpdates"},
		{func(p *billingv1.BillingPortalConfiguration) { p.Spec.DeletionPolicy = "Delete" }, "spec.deletionPolicy"},
	} {
		p := newPortal(ns, "bad")
		tc.mutate(p)
		err := env.Client.Create(ctx, p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want a refusal naming %q, got %v", tc.want, err)
		}
	}
	adopted := newPortal(ns, "adopted")
	adopted.Spec.Adopt = &billingv1.BillingPortalConfigurationAdopt{ID: "bpc_one"}
	adopted.Spec.DeletionPolicy = billingv1.PortalOrphan
	create(t, adopted)
	testenv.Eventually(t, 10*time.Second, func() error { // the operator writes its status meanwhile
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(adopted), adopted); err != nil {
			return err
		}
		adopted.Spec.Adopt.ID = "bpc_two"
		err := env.Client.Update(ctx, adopted)
		if apierrors.IsConflict(err) {
			return err
		}
		if err == nil || !strings.Contains(err.Error(), "adopt is immutable") {
			t.Errorf("adopt changed: %v", err)
		}
		return nil
	})
}
