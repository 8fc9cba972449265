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
