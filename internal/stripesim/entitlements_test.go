package stripesim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	opstripe "github.com/stripe-operator/stripe-operator/internal/stripe"
)

// attachFeature attaches a feature to a product with a raw call, as the operator makes it (stripe-go v76 has no
// typed call).
func attachFeature(sc *client.API, product, feature string) (*opstripe.ProductFeature, error) {
	p := &opstripe.ProductFeatureParams{EntitlementFeature: stripe.String(feature)}
	pf := &opstripe.ProductFeature{}
	err := sc.Products.B.Call(http.MethodPost, "/v1/products/"+product+"/features", sc.Products.Key, p, pf)
	return pf, err
}

func detachFeature(sc *client.API, product, id string) error {
	return sc.Products.B.Call(http.MethodDelete, "/v1/products/"+product+"/features/"+id, sc.Products.Key,
		&stripe.Params{}, &opstripe.ProductFeature{})
}

// entitlementKeys are the lookup keys of a customer's active entitlements, sorted.
func entitlementKeys(t *testing.T, sc *client.API, customer string) []string {
	t.Helper()
	it := sc.EntitlementsActiveEntitlements.List(&stripe.EntitlementsActiveEntitlementListParams{
		Customer: stripe.String(customer)})
	var keys []string
	for it.Next() {
		keys = append(keys, it.EntitlementsActiveEntitlement().LookupKey)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	slices.Sort(keys)
	return keys
}

// summaries are the lookup-key sets of the customer's entitlement summary events, oldest first.
func summaries(t *testing.T, sc *client.API, customer string) []string {
	t.Helper()
	it := sc.Events.List(&stripe.EventListParams{Type: stripe.String("entitlements.active_entitlement_summary.updated")})
	var out []string
	for it.Next() {
		var s struct {
			Customer     string `json:"customer"`
			Entitlements struct {
				Data []struct {
					LookupKey string `json:"lookup_key"`
				} `json:"data"`
			} `json:"entitlements"`
		}
		if err := json.Unmarshal(it.Event().Data.Raw, &s); err != nil {
			t.Fatal(err)
		}
		if s.Customer != customer {
			continue
		}
		keys := make([]string, 0, len(s.Entitlements.Data))
		for _, e := range s.Entitlements.Data {
			keys = append(keys, e.LookupKey)
		}
		slices.Sort(keys)
		out = append([]string{"[" + strings.Join(keys, " ") + "]"}, out...)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	return out
}

// TestEntitlementFeatures: a feature is created with its required parameters, its lookup key is unique and cannot
// change, its name, metadata and active flag can; archived features are listed only with archived=true.
func TestEntitlementFeatures(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, err := sc.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("SSO")})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); e.Param != "lookup_key" {
		t.Errorf("missing lookup_key: %+v", e)
	}
	f := must(sc.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("SSO"),
		LookupKey: stripe.String("sso"), Metadata: map[string]string{"team": "id"}}))
	if !strings.HasPrefix(f.ID, "feat_") || f.LookupKey != "sso" || !f.Active || f.Metadata["team"] != "id" {
		t.Fatalf("created: %+v", f)
	}
	_, err = sc.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("Other"),
		LookupKey: stripe.String("sso")})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "resource_already_exists"); e.Param != "lookup_key" ||
		!strings.Contains(e.Msg, f.ID) {
		t.Errorf("a duplicate lookup key: %+v", e)
	}
	_, err = sc.EntitlementsFeatures.Update(f.ID, &stripe.EntitlementsFeatureParams{LookupKey: stripe.String("x")})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.HasPrefix(e.Msg,
		"Received unknown parameter: lookup_key") {
		t.Errorf("a lookup key change: %+v", e)
	}
	up := must(sc.EntitlementsFeatures.Update(f.ID, &stripe.EntitlementsFeatureParams{Name: stripe.String("Single sign-on"),
		Active: stripe.Bool(false)}))
	if up.Name != "Single sign-on" || up.Active || up.LookupKey != "sso" {
		t.Fatalf("updated: %+v", up)
	}
	list := func(p *stripe.EntitlementsFeatureListParams) []string {
		var ids []string
		it := sc.EntitlementsFeatures.List(p)
		for it.Next() {
			ids = append(ids, it.EntitlementsFeature().ID)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		return ids
	}
	if ids := list(&stripe.EntitlementsFeatureListParams{}); len(ids) != 0 {
		t.Errorf("an archived feature listed: %v", ids)
	}
	archived := &stripe.EntitlementsFeatureListParams{}
	archived.Filters.AddFilter("archived", "", "true")
	if ids := list(archived); !slices.Equal(ids, []string{f.ID}) {
		t.Errorf("archived=true: %v", ids)
	}
	_, err = sc.EntitlementsFeatures.Get("feat_missing", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, "resource_missing")
}

// TestActiveEntitlements: a customer is entitled to the features of the products of its active subscriptions; a
// feature attached twice, or archived, is refused; every change of a customer's set (subscription created,
// features attached or detached, subscription canceled) sends one summary event with the whole set, and a change
// that leaves the set as it was sends none.
func TestActiveEntitlements(t *testing.T) {
	_, sc := newClient(t, Options{})
	sso := must(sc.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("SSO"),
		LookupKey: stripe.String("sso")}))
	audit := must(sc.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("Audit"),
		LookupKey: stripe.String("audit-log")}))
	prod, price := fixture(t, sc, 1000)
	pf := must(attachFeature(sc, prod.ID, sso.ID))
	if !strings.HasPrefix(pf.ID, "prodft_") || pf.EntitlementFeature == nil || pf.EntitlementFeature.LookupKey != "sso" {
		t.Fatalf("attached: %+v", pf)
	}
	_, err := attachFeature(sc, prod.ID, sso.ID)
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "resource_already_exists"); e.Param !=
		"entitlement_feature" {
		t.Errorf("a feature attached twice: %+v", e)
	}
	_, err = attachFeature(sc, "prod_missing", sso.ID)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, "resource_missing")

	cus := must(sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("e@example.com"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	if got := entitlementKeys(t, sc, cus.ID); len(got) != 0 {
		t.Fatalf("entitled before subscribing: %v", got)
	}
	sub := must(sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}}))
	if got := entitlementKeys(t, sc, cus.ID); !slices.Equal(got, []string{"sso"}) {
		t.Fatalf("subscribed: %v", got)
	}
	// A metadata change of the subscription leaves the set as it was: no summary.
	must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Metadata: map[string]string{"k": "v"}}))
	must(attachFeature(sc, prod.ID, audit.ID))
	if got := entitlementKeys(t, sc, cus.ID); !slices.Equal(got, []string{"audit-log", "sso"}) {
		t.Fatalf("a second feature attached: %v", got)
	}
	if err := detachFeature(sc, prod.ID, pf.ID); err != nil {
		t.Fatal(err)
	}
	if got := entitlementKeys(t, sc, cus.ID); !slices.Equal(got, []string{"audit-log"}) {
		t.Fatalf("sso detached: %v", got)
	}
	must(sc.EntitlementsFeatures.Update(sso.ID, &stripe.EntitlementsFeatureParams{Active: stripe.Bool(false)}))
	_, err = attachFeature(sc, prod.ID, sso.ID)
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "entitlement_feature" {
		t.Errorf("an archived feature attached: %+v", e)
	}
	must(sc.Subscriptions.Cancel(sub.ID, nil))
	if got := entitlementKeys(t, sc, cus.ID); len(got) != 0 {
		t.Fatalf("canceled: %v", got)
	}
	want := []string{"[sso]", "[audit-log sso]", "[audit-log]", "[]"}
	if got := summaries(t, sc, cus.ID); !slices.Equal(got, want) {
		t.Errorf("summary events %v, want %v", got, want)
	}
	if e := stripeErr(t, sc.EntitlementsActiveEntitlements.List(&stripe.EntitlementsActiveEntitlementListParams{}).Err(),
		400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); e.Param != "customer" {
		t.Errorf("a list without customer: %+v", e)
	}
}
