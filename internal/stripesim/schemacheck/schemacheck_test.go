package schemacheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRecorder checks that a recorder keeps the API exchanges of every handler it wraps, with the form of a POST,
// passes the simulator's admin API through unrecorded, and that Validate skips the 404s of URLs Stripe lacks.
func TestRecorder(t *testing.T) {
	o, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(nil)
	handler := func(status int, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		})
	}
	balance := httptest.NewServer(rec.Wrap(handler(http.StatusOK, `{"balance": "oops"}`)))
	defer balance.Close()
	missing := httptest.NewServer(rec.Wrap(handler(http.StatusNotFound,
		`{"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}`)))
	defer missing.Close()

	for _, req := range []struct{ method, url, body string }{
		{"POST", balance.URL + "/v1/customers/cus_1", "name=A&expand[]=test_clock"},
		{"GET", balance.URL + "/_sim/stats", ""},
		{"GET", missing.URL + "/v1/nowhere/x", ""},
	} {
		r, _ := http.NewRequestWithContext(t.Context(), req.method, req.url, strings.NewReader(req.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	exs := rec.Exchanges()
	if len(exs) != 2 || exs[0].Params.Get("name") != "A" || exs[1].Status != http.StatusNotFound {
		t.Fatalf("recorded %+v", exs)
	}
	n, vs := o.Validate(exs, []map[string]any{{"object": "customer", "id": 7}})
	if n != 1 {
		t.Errorf("validated %d responses, want 1 (the 404 of an unknown URL is skipped)", n)
	}
	keys, _ := Distinct(vs)
	for _, want := range []string{"POST /v1/customers/{customer} 200: $.balance: want an integer, got a string",
		"event data.object customer: $.id: want a string, got a number"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("no violation %q in %v", want, keys)
		}
	}
}

// TestLaterSpec: what later.json adds is validated as strictly as the rest: a billing meter and its operations are
// known with their required fields and enumerations, and recurring.meter is a string, while 2023-10-16's own
// schemas are unchanged.
func TestLaterSpec(t *testing.T) {
	o, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"POST /v1/billing/meters", "GET /v1/billing/meters/mtr_1",
		"POST /v1/billing/meters/mtr_1/deactivate", "POST /v1/billing/meter_events"} {
		method, path, _ := strings.Cut(op, " ")
		if !o.Known(method, path) {
			t.Errorf("%s unknown", op)
		}
	}
	meter := map[string]any{"id": "mtr_1", "object": "billing.meter", "created": 1, "display_name": "x",
		"event_name": "e", "event_time_window": nil, "livemode": false, "status": "active", "updated": 1,
		"customer_mapping":    map[string]any{"event_payload_key": "stripe_customer_id", "type": "by_id"},
		"default_aggregation": map[string]any{"formula": "sum"}, "status_transitions": map[string]any{"deactivated_at": nil},
		"value_settings": map[string]any{"event_payload_key": "value"}}
	if vs := o.ValidateObject("meter", meter); len(vs) != 0 {
		t.Errorf("a valid meter: %v", vs)
	}
	meter["status"], meter["metadata"] = "paused", map[string]any{}
	delete(meter, "event_name")
	keys, _ := Distinct(o.ValidateObject("meter", meter))
	joined := strings.Join(keys, "\n")
	if len(keys) != 3 || !strings.Contains(joined, "$.status") || !strings.Contains(joined, `unknown field "metadata"`) ||
		!strings.Contains(joined, "event_name") {
		t.Errorf("a meter with a bad status, an unknown field and no event_name: %v", keys)
	}
	rec := o.Components.Schemas["recurring"]
	if rec == nil || rec.Properties["meter"] == nil || rec.Properties["interval"] == nil {
		t.Fatalf("recurring: %+v", rec)
	}
}
