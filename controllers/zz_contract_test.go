package controllers

import (
	"slices"
	"strings"
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
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
		"DELETE /v1/customers/{id}/tax_ids/{id}"} {
		if !endpoints[e] {
			t.Errorf("the suite never exercised %s", e)
		}
	}
	// The resources 2023-10-16 lacks are replayed to the stripe-mock of a later specification.
	var later []stripesim.Request
	reqs = slices.DeleteFunc(reqs, func(r stripesim.Request) bool {
		if laterOnly(r.Path) {
			later = append(later, r)
			return true
		}
		return false
	})
	for _, err := range stripesim.Replay(t.Context(), mock.URL, "sk_test_123", reqs) {
		t.Errorf("stripe-mock refused: %v", err)
	}
	t.Logf("stripe-mock accepted %d requests over %d endpoints", len(reqs), len(endpoints))
	for _, e := range []string{"POST /v1/entitlements/features", "POST /v1/entitlements/features/{id}",
		"GET /v1/entitlements/features/{id}", "GET /v1/entitlements/features", "POST /v1/products/{id}/features",
		"GET /v1/products/{id}/features", "DELETE /v1/products/{id}/features/{id}",
		"GET /v1/entitlements/active_entitlements"} {
		if !endpoints[e] {
			t.Errorf("the suite never exercised %s", e)
		}
	}
	laterMock, err := testenv.StartLaterStripeMock()
	if err != nil {
		t.Fatal(err)
	}
	defer laterMock.Stop()
	for _, err := range stripesim.Replay(t.Context(), laterMock.URL, "sk_test_123", later) {
		t.Errorf("stripe-mock %s refused: %v", testenv.LaterStripeMockVersion, err)
	}
	t.Logf("stripe-mock %s accepted %d requests", testenv.LaterStripeMockVersion, len(later))
}

// laterOnly reports whether a request path is of a resource API version 2023-10-16 does not have.
func laterOnly(path string) bool {
	parts := strings.Split(path, "/")
	return strings.HasPrefix(path, "/v1/entitlements/") ||
		len(parts) >= 5 && parts[2] == "products" && parts[4] == "features"
}

func pathPattern(p string) string {
	parts := strings.Split(p, "/")
	ids := []int{3, 5} // /v1/customers/{id}/tax_ids/{id}
	if len(parts) > 2 && parts[2] == "entitlements" {
		ids = []int{4} // /v1/entitlements/features/{id}
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
