package controllers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// The tests in this file run after every other test of the package (Go runs files in name order), so they see
// the whole suite's traffic and logs.

// Every request shape sent to the simulator during the suite (the operator's, plus the few the tests make to play
// "the Dashboard") is replayed to stripe-mock v0.183.0 (hack/stripe-mock.sh), which validates it against Stripe's
// OpenAPI specification of 2023-10-16, the API version stripe-go v76 pins.
func TestZZContractWithStripeMock(t *testing.T) {
	mock, err := testenv.StartStripeMock()
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Stop()
	reqs := sim.Recorded()
	if len(reqs) < 50 {
		t.Fatalf("only %d requests recorded; run the whole package", len(reqs))
	}
	endpoints := map[string]bool{}
	for _, r := range reqs {
		endpoints[r.Method+" "+pathPattern(r.Path)] = true
	}
	for _, e := range []string{"POST /v1/customers", "POST /v1/customers/{id}", "DELETE /v1/customers/{id}",
		"GET /v1/customers", "POST /v1/products", "POST /v1/products/{id}", "POST /v1/prices",
		"POST /v1/prices/{id}", "POST /v1/subscriptions", "POST /v1/subscriptions/{id}",
		"DELETE /v1/subscriptions/{id}", "POST /v1/payment_methods/{id}/attach", "POST /v1/coupons",
		"POST /v1/coupons/{id}", "DELETE /v1/coupons/{id}", "GET /v1/coupons/{id}", "GET /v1/coupons",
		"POST /v1/promotion_codes", "POST /v1/promotion_codes/{id}", "GET /v1/promotion_codes/{id}",
		"GET /v1/promotion_codes", "DELETE /v1/subscriptions/{id}/discount", "POST /v1/tax_rates",
		"POST /v1/tax_rates/{id}", "GET /v1/tax_rates", "POST /v1/customers/{id}/tax_ids",
		"DELETE /v1/customers/{id}/tax_ids/{id}", "POST /v1/billing/meters", "POST /v1/billing/meters/{id}",
		"GET /v1/billing/meters/{id}", "POST /v1/billing/meters/{id}/deactivate",
		"POST /v1/billing/meters/{id}/reactivate",
		"POST /v1/billing_portal/configurations", "POST /v1/billing_portal/configurations/{id}",
		"GET /v1/billing_portal/configurations/{id}"} {
		if !endpoints[e] {
			t.Errorf("the suite never exercised %s", e)
		}
	}
	var now, later []stripesim.Request
	for _, r := range reqs {
		if laterShape(r) {
			later = append(later, r)
		} else {
			now = append(now, r)
		}
	}
	for _, err := range stripesim.Replay(t.Context(), mock.URL, "sk_test_123", now) {
		t.Errorf("stripe-mock refused: %v", err)
	}
	t.Logf("stripe-mock accepted %d requests over %d endpoints", len(now), len(endpoints))
	for _, e := range []string{"POST /v1/entitlements/features", "POST /v1/entitlements/features/{id}",
		"GET /v1/entitlements/features/{id}", "GET /v1/entitlements/features", "POST /v1/products/{id}/features",
		"GET /v1/products/{id}/features", "DELETE /v1/products/{id}/features/{id}",
		"GET /v1/entitlements/active_entitlements"} {
		if !endpoints[e] {
			t.Errorf("the suite never exercised %s", e)
		}
	}
	if len(later) == 0 {
		t.Fatal("no request of a later API version's shape (billing meters, entitlements) was recorded")
	}
	lmock, err := testenv.StartLaterStripeMock()
	if err != nil {
		t.Fatal(err)
	}
	defer lmock.Stop()
	for _, err := range stripesim.Replay(t.Context(), lmock.URL, "sk_test_123", later) {
		t.Errorf("stripe-mock %s refused: %v", testenv.LaterStripeMockVersion, err)
	}
	t.Logf("stripe-mock %s accepted %d requests of shapes 2023-10-16 lacks", testenv.LaterStripeMockVersion,
		len(later))
}

// laterShape says a request uses what Stripe's 2023-10-16 specification lacks and stripe-go v76.25.0 sends:
// billing meters and meter events, a price on a meter (recurring[meter]), entitlement features, active
// entitlements and product features, and an endpoint enabled for their event types. These are replayed to the later stripe-mock.
func laterShape(r stripesim.Request) bool {
	parts := strings.Split(r.Path, "/")
	if strings.HasPrefix(r.Path, "/v1/billing/meter") || strings.HasPrefix(r.Path, "/v1/entitlements/") ||
		len(parts) >= 5 && parts[2] == "products" && parts[4] == "features" {
		return true
	}
	form, err := url.ParseQuery(r.Params)
	if err != nil || r.Method != http.MethodPost {
		return false
	}
	if r.Path == "/v1/webhook_endpoints" {
		// An endpoint enabled for event types of later API versions (as one configured in the Dashboard may be).
		for k, vs := range form {
			if strings.HasPrefix(k, "enabled_events") && slices.ContainsFunc(vs, func(v string) bool {
				return slices.Contains(webhookreceiver.LaterTypes, v)
			}) {
				return true
			}
		}
		return false
	}
	return r.Path == "/v1/prices" && form.Has("recurring[meter]")
}

func pathPattern(p string) string {
	parts := strings.Split(p, "/")
	ids := []int{3, 5} // /v1/customers/{id}/tax_ids/{id}
	if len(parts) > 2 && (parts[2] == "billing" || parts[2] == "billing_portal" || parts[2] == "entitlements") {
		ids = []int{4} // /v1/billing/meters/{id}/deactivate, /v1/billing_portal/configurations/{id}, /v1/entitlements/features/{id}
	}
	for _, i := range ids {
		if len(parts) > i {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// No API key appears in anything the operator logged during the suite.
func TestZZNoAPIKeyInLogs(t *testing.T) {
	out := logs.String()
	if len(out) < 1000 {
		t.Fatalf("only %d bytes of logs captured", len(out))
	}
	for _, key := range []string{testAPIKey, "sk_test_rolled_key", "rk_test_prices_only", "sk_live_real_money_key",
		"sk_test_good_key", "rk_test_read_only_observer"} {
		if strings.Contains(out, key) {
			t.Errorf("the key %s appears in the logs", key)
		}
	}
}
