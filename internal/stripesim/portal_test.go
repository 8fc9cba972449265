package stripesim

import (
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// portalParams is a valid create: a business profile and invoice history.
func portalParams() *stripe.BillingPortalConfigurationParams {
	return &stripe.BillingPortalConfigurationParams{
		BusinessProfile: &stripe.BillingPortalConfigurationBusinessProfileParams{
			Headline: stripe.String("Acme billing"), PrivacyPolicyURL: stripe.String("https://example.com/privacy")},
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			InvoiceHistory: &stripe.BillingPortalConfigurationFeaturesInvoiceHistoryParams{Enabled: stripe.Bool(true)}},
	}
}

// subscriptionUpdate enables subscription updates to the given product and prices.
func subscriptionUpdate(product string, prices ...string) *stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams {
	return &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{Enabled: stripe.Bool(true),
		DefaultAllowedUpdates: stripe.StringSlice([]string{"price"}),
		ProrationBehavior:     stripe.String("create_prorations"),
		Products: []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams{
			{Product: stripe.String(product), Prices: stripe.StringSlice(prices)}}}
}

func newPortal(t *testing.T, sc *client.API, p *stripe.BillingPortalConfigurationParams) *stripe.BillingPortalConfiguration {
	t.Helper()
	return must(sc.BillingPortalConfigurations.New(p))
}

// TestPortalConfigurationRules: Stripe's rules for a create: business_profile and features are required, URLs must
// be URLs, subscription updates need products, every price must exist and belong to its product. A refused create
// makes nothing.
func TestPortalConfigurationRules(t *testing.T) {
	sim, sc := newClient(t, Options{})
	prod, price := fixture(t, sc, 1000)
	_, otherPrice := fixture(t, sc, 2000)

	_, err := sc.BillingPortalConfigurations.New(&stripe.BillingPortalConfigurationParams{
		Features: portalParams().Features})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); e.Param != "business_profile" {
		t.Errorf("missing business_profile: %+v", e)
	}
	_, err = sc.BillingPortalConfigurations.New(&stripe.BillingPortalConfigurationParams{
		BusinessProfile: portalParams().BusinessProfile})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); e.Param != "features" {
		t.Errorf("missing features: %+v", e)
	}
	bad := portalParams()
	bad.BusinessProfile.TermsOfServiceURL = stripe.String("not a url")
	_, err = sc.BillingPortalConfigurations.New(bad)
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param !=
		"business_profile[terms_of_service_url]" || e.Msg != "Not a valid URL" {
		t.Errorf("a malformed URL: %+v", e)
	}
	noProducts := portalParams()
	noProducts.Features.SubscriptionUpdate = &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{
		Enabled: stripe.Bool(true), DefaultAllowedUpdates: stripe.StringSlice([]string{"price"})}
	noProducts.AddExtra("features[subscription_update][products]", "")
	_, err = sc.BillingPortalConfigurations.New(noProducts)
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param !=
		"features[subscription_update][products]" || !strings.Contains(e.Msg, "at least one product") {
		t.Errorf("subscription updates without products: %+v", e)
	}
	wrong := portalParams()
	wrong.Features.SubscriptionUpdate = subscriptionUpdate(prod.ID, price.ID, otherPrice.ID)
	_, err = sc.BillingPortalConfigurations.New(wrong)
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param !=
		"features[subscription_update][products][0][prices][1]" ||
		e.Msg != "The price "+otherPrice.ID+" does not belong to the product "+prod.ID+"." {
		t.Errorf("a price of another product: %+v", e)
	}
	missing := portalParams()
	missing.Features.SubscriptionUpdate = subscriptionUpdate(prod.ID, "price_missing")
	_, err = sc.BillingPortalConfigurations.New(missing)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, "resource_missing")
	if n := len(sim.ObjectsByUID()["billing_portal.configuration"]); n != 0 {
		t.Fatalf("%d configurations after refused creates", n)
	}
}

// TestPortalConfigurations: a configuration is created, is not the default, changes in place (features, products,
// active, metadata), is retrieved and listed by active, and every change is an event. The default configuration
// (the Dashboard's) cannot be deactivated.
func TestPortalConfigurations(t *testing.T) {
	sim, sc := newClient(t, Options{})
	prod, price := fixture(t, sc, 1000)
	otherProd, otherPrice := fixture(t, sc, 2000)

	p := portalParams()
	p.Features.SubscriptionUpdate = subscriptionUpdate(prod.ID, price.ID)
	p.AddMetadata("k8s_uid", "uid-portal")
	pc := newPortal(t, sc, p)
	if !strings.HasPrefix(pc.ID, "bpc_") || !pc.Active || pc.IsDefault || pc.BusinessProfile.Headline != "Acme billing" ||
		!pc.Features.InvoiceHistory.Enabled || pc.Features.PaymentMethodUpdate.Enabled ||
		!pc.Features.SubscriptionUpdate.Enabled || len(pc.Features.SubscriptionUpdate.Products) != 1 ||
		pc.Features.SubscriptionUpdate.Products[0].Prices[0] != price.ID ||
		pc.Features.SubscriptionCancel.Mode != "at_period_end" || pc.Metadata["k8s_uid"] != "uid-portal" {
		t.Fatalf("created: %+v", pc)
	}

	up := &stripe.BillingPortalConfigurationParams{Active: stripe.Bool(false),
		DefaultReturnURL: stripe.String("https://example.com/account"),
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			SubscriptionUpdate: subscriptionUpdate(otherProd.ID, otherPrice.ID),
			SubscriptionCancel: &stripe.BillingPortalConfigurationFeaturesSubscriptionCancelParams{
				Enabled: stripe.Bool(true), Mode: stripe.String("immediately"),
				ProrationBehavior: stripe.String("create_prorations")}}}
	got := must(sc.BillingPortalConfigurations.Update(pc.ID, up))
	if got.Active || got.DefaultReturnURL != "https://example.com/account" ||
		got.Features.SubscriptionUpdate.Products[0].Product != otherProd.ID ||
		!got.Features.SubscriptionCancel.Enabled || got.Features.SubscriptionCancel.Mode != "immediately" ||
		!got.Features.InvoiceHistory.Enabled {
		t.Fatalf("updated: %+v", got)
	}
	if g := must(sc.BillingPortalConfigurations.Get(pc.ID, nil)); g.Active || g.Updated < g.Created {
		t.Errorf("retrieved: %+v", g)
	}
	_, err := sc.BillingPortalConfigurations.Get("bpc_missing", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, "resource_missing")

	def, created := sim.SaveDashboardPortalSettings(DefaultAccount, false)
	if !created {
		t.Fatal("the account had a default configuration already")
	}
	_, err = sc.BillingPortalConfigurations.Update(def, &stripe.BillingPortalConfigurationParams{
		Active: stripe.Bool(false)})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "active" {
		t.Errorf("deactivating the default: %+v", e)
	}

	it := sc.BillingPortalConfigurations.List(&stripe.BillingPortalConfigurationListParams{Active: stripe.Bool(true)})
	var active []string
	for it.Next() {
		active = append(active, it.BillingPortalConfiguration().ID)
	}
	if it.Err() != nil || len(active) != 1 || active[0] != def {
		t.Errorf("active configurations: %v %v", active, it.Err())
	}
	if got := eventsOf(t, sc, "billing_portal.configuration."); got !=
		"billing_portal.configuration.created,billing_portal.configuration.updated" {
		t.Errorf("events: %s", got)
	}
}

// portalScenario creates, updates, retrieves and lists a portal configuration offering price, as the operator does
// (the conformance test replays it to stripe-mock).
func portalScenario(sc *client.API, prod *stripe.Product, price *stripe.Price) error {
	p := portalParams()
	p.Features.SubscriptionUpdate = subscriptionUpdate(prod.ID, price.ID)
	p.AddMetadata("k8s_uid", "uid-portal")
	pc, err := sc.BillingPortalConfigurations.New(p)
	if err != nil {
		return step("create portal configuration", err)
	}
	up := &stripe.BillingPortalConfigurationParams{Active: stripe.Bool(false),
		DefaultReturnURL: stripe.String("https://example.com/account"),
		BusinessProfile:  &stripe.BillingPortalConfigurationBusinessProfileParams{PrivacyPolicyURL: stripe.String("")},
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			CustomerUpdate: &stripe.BillingPortalConfigurationFeaturesCustomerUpdateParams{Enabled: stripe.Bool(true),
				AllowedUpdates: stripe.StringSlice([]string{"email"})},
			SubscriptionUpdate: &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{
				Enabled: stripe.Bool(false)}}}
	up.AddMetadata("k8s_uid", "")
	if _, err := sc.BillingPortalConfigurations.Update(pc.ID, up); err != nil {
		return step("update portal configuration", err)
	}
	if _, err := sc.BillingPortalConfigurations.Get(pc.ID, nil); err != nil {
		return step("retrieve portal configuration", err)
	}
	lp := &stripe.BillingPortalConfigurationListParams{Active: stripe.Bool(false)}
	lp.Limit = stripe.Int64(100)
	it := sc.BillingPortalConfigurations.List(lp)
	for it.Next() {
	}
	return step("list portal configurations", it.Err())
}
