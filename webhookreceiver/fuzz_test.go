package webhookreceiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// FuzzHandler sends arbitrary bodies and signature headers. Nothing unsigned may get through: every answer is a
// refusal, and the store (which would fail the test if reached) is never called.
func FuzzHandler(f *testing.F) {
	valid := eventJSON("evt_Fuzz", "customer.updated")
	f.Add(valid, signed(valid, "whsec_other", time.Now()))
	f.Add(valid, "t=1,v1=00")
	f.Add([]byte("{}"), "")
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"customer.updated"}`), "t=,v1=,v0=")
	h := &Handler{Client: nil, Namespace: "default", Log: logr.Discard(),
		Secrets: func(context.Context) ([]string, error) { return []string{secretA}, nil }}
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		code := post(h, body, header)
		switch code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for an unsigned delivery", code)
		}
	})
}

// FuzzSignatureHeader parses arbitrary headers without panicking, and accepts only ones with t= and v1=.
func FuzzSignatureHeader(f *testing.F) {
	f.Add("t=1700000000,v1=abc")
	f.Add("t=1700000000,v1=abc,v1=def,v0=x")
	f.Add(",,,")
	f.Add("t=-5,v1=")
	f.Fuzz(func(t *testing.T, header string) {
		ts, ok := signatureTime(header)
		if ok && ts.IsZero() {
			t.Fatalf("accepted %q without a time", header)
		}
	})
}
