package stripesim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// versionReply is the status, headers and error of a response.
type versionReply struct {
	StatusCode int
	Header     http.Header
}

// versionGet sends GET /v1/customers with the given Stripe-Version header ("" sends none).
func versionGet(t *testing.T, url, version string) (versionReply, apiErrorBody) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer sk_test_simulator")
	if version != "" {
		req.Header.Set("Stripe-Version", version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body apiErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return versionReply{StatusCode: resp.StatusCode, Header: resp.Header}, body
}

type apiErrorBody struct {
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Param   string `json:"param"`
	} `json:"error"`
}

// TestStripeVersionModelledIsServed: stripe-go v76 sends Stripe-Version 2023-10-16 on every request and is served;
// a request without the header (the account default, 2023-10-16) is served; every answer says 2023-10-16.
func TestStripeVersionModelledIsServed(t *testing.T) {
	sim := New(Options{RateLimitOff: true, Seed: 42})
	var mu sync.Mutex
	sent := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent[r.Header.Get("Stripe-Version")]++
		mu.Unlock()
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	sc := stripeClient(srv.URL, "sk_test_simulator")
	cus, err := sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("v@example.com")})
	if err != nil {
		t.Fatalf("stripe-go v76's create refused: %v", err)
	}
	if _, err := sc.Customers.Get(cus.ID, nil); err != nil {
		t.Fatalf("stripe-go v76's retrieve refused: %v", err)
	}
	if it := sc.Customers.List(&stripe.CustomerListParams{}); !it.Next() {
		t.Fatalf("stripe-go v76's list refused: %v", it.Err())
	}
	mu.Lock()
	if len(sent) != 1 || sent[stripe.APIVersion] != 3 || stripe.APIVersion != "2023-10-16" {
		t.Errorf("stripe-go v76 sent Stripe-Version %v, want 2023-10-16 three times", sent)
	}
	mu.Unlock()
	for _, v := range []string{"", "2023-10-16"} {
		resp, body := versionGet(t, srv.URL, v)
		if resp.StatusCode != http.StatusOK || body.Error != nil ||
			resp.Header.Get("Stripe-Version") != "2023-10-16" {
			t.Errorf("Stripe-Version %q: %d %+v, answered as %s", v, resp.StatusCode, body.Error,
				resp.Header.Get("Stripe-Version"))
		}
	}
}

// TestStripeVersionOtherIsRefused: a Stripe-Version stripesim does not model is a 400 invalid_request_error naming
// the version asked for and the one modelled, which changes nothing; with AnyAPIVersion it is served, in
// 2023-10-16 shapes.
func TestStripeVersionOtherIsRefused(t *testing.T) {
	_, srv := newSim(t, Options{})
	for _, v := range []string{"2024-04-10", "2022-11-15", "2023-10-16.preview", "latest"} {
		resp, body := versionGet(t, srv.URL, v)
		if resp.StatusCode != http.StatusBadRequest || body.Error == nil || body.Error.Type != "invalid_request_error" ||
			!strings.Contains(body.Error.Message, v) || !strings.Contains(body.Error.Message, "2023-10-16") ||
			!strings.Contains(body.Error.Message, "-any-api-version") ||
			!strings.HasPrefix(resp.Header.Get("Request-Id"), "req_") {
			t.Errorf("Stripe-Version %s: want a 400 naming %s and 2023-10-16, got %d %+v", v, v, resp.StatusCode,
				body.Error)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/customers",
		strings.NewReader("email=x%40example.com"))
	req.Header.Set("Authorization", "Bearer sk_test_simulator")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Stripe-Version", "2024-04-10")
	created, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = created.Body.Close()
	if created.StatusCode != http.StatusBadRequest {
		t.Fatalf("create with Stripe-Version 2024-04-10: %d", created.StatusCode)
	}
	if it := stripeClient(srv.URL, "sk_test_simulator").Customers.List(&stripe.CustomerListParams{}); it.Next() {
		t.Errorf("a create refused for its Stripe-Version created %s", it.Customer().ID)
	}

	_, anySrv := newSim(t, Options{AnyAPIVersion: true})
	resp, body := versionGet(t, anySrv.URL, "2024-04-10")
	if resp.StatusCode != http.StatusOK || body.Error != nil || resp.Header.Get("Stripe-Version") != "2023-10-16" {
		t.Errorf("AnyAPIVersion: want 2024-04-10 served in 2023-10-16 shapes, got %d %+v as %s", resp.StatusCode,
			body.Error, resp.Header.Get("Stripe-Version"))
	}
}
