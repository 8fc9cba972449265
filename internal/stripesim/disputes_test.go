package stripesim

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// adminRequest sends a request with a JSON body to the simulator and returns the status, the answer decoded as an
// object (empty when it is not one) and the raw answer.
func adminRequest(t *testing.T, method, url, body string) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out, data
}

// adminPost posts a JSON body to the admin API and returns the status and the decoded answer.
func adminPost(t *testing.T, base, path, body string) (int, map[string]any) {
	t.Helper()
	code, out, data := adminRequest(t, http.MethodPost, base+path, body)
	if len(out) == 0 {
		t.Fatalf("%s answered %d %q", path, code, data)
	}
	return code, out
}

// paidCharge creates a customer paying by card and a subscription, and returns its paid first invoice, the
// invoice's payment intent and its charge, checking that both name the customer.
func paidCharge(t *testing.T, sc *client.API, amount int64) (*stripe.Invoice, *stripe.PaymentIntent, *stripe.Charge) {
	t.Helper()
	cus := must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	_, pr := fixture(t, sc, amount)
	sub := must(subscribe(t, sc, cus, pr, nil))
	in := sub.LatestInvoice
	if in == nil || in.PaymentIntent == nil || in.Status != "paid" {
		t.Fatalf("latest invoice %+v", in)
	}
	pi := must(sc.PaymentIntents.Get(in.PaymentIntent.ID, nil))
	if pi.Customer == nil || pi.Customer.ID != cus.ID || pi.LatestCharge == nil ||
		!strings.HasPrefix(pi.LatestCharge.ID, "ch_") {
		t.Fatalf("payment intent: customer %+v latest charge %+v", pi.Customer, pi.LatestCharge)
	}
	ch := must(sc.Charges.Get(pi.LatestCharge.ID, nil))
	if ch.Customer == nil || ch.Customer.ID != cus.ID || ch.PaymentIntent == nil || ch.PaymentIntent.ID != pi.ID ||
		ch.Status != "succeeded" || !ch.Paid || ch.Amount != amount || ch.Disputed {
		t.Fatalf("charge %+v", ch)
	}
	return in, pi, ch
}

// checkDisputeRefusals checks what the admin API refuses while dispute id of charge chID is open.
func checkDisputeRefusals(t *testing.T, srvURL, id, invoiceID, piID, chID string) {
	t.Helper()
	// Refusals: a second dispute of the charge, a bad status, an unknown dispute.
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/_sim/disputes", `{"invoice":"` + invoiceID + `"}`, http.StatusBadRequest},
		{"/_sim/disputes", `{"payment_intent":"pi_nope"}`, http.StatusNotFound},
		{"/_sim/disputes", `{"payment_intent":"` + piID + `","charge":"` + chID + `"}`, http.StatusBadRequest},
		{"/_sim/disputes", `{"charge":"` + chID + `","reason":"because"}`, http.StatusBadRequest},
		{"/_sim/disputes/" + id + "/close", `{"status":"maybe"}`, http.StatusBadRequest},
		{"/_sim/disputes/dp_nope/close", `{"status":"won"}`, http.StatusNotFound},
	} {
		if code, body := adminPost(t, srvURL, c.path, c.body); code != c.status {
			t.Errorf("POST %s %s: %d %v, want %d", c.path, c.body, code, body, c.status)
		}
	}
}

// checkDisputeEvents checks the delivered and listed events of dispute id: created, then closed as lost.
func checkDisputeEvents(t *testing.T, sc *client.API, r *receiver, id, chID, piID string) {
	t.Helper()
	evs := r.waitFor(t, 2)
	types := map[stripe.EventType]bool{}
	for _, ev := range evs {
		types[ev.Type] = true
	}
	if len(evs) != 2 || !types["charge.dispute.created"] || !types["charge.dispute.closed"] {
		t.Fatalf("delivered %v", types)
	}
	for _, ev := range evs {
		var d stripe.Dispute
		raw, _ := json.Marshal(ev.Data.Object)
		if err := json.Unmarshal(raw, &d); err != nil || d.ID != id || d.Charge.ID != chID ||
			d.PaymentIntent.ID != piID || d.Amount != 4200 || d.Reason != "product_not_received" {
			t.Errorf("%s carries %+v (%v)", ev.Type, d, err)
		}
		want := stripe.DisputeStatusNeedsResponse
		if ev.Type == "charge.dispute.closed" {
			want = stripe.DisputeStatusLost
			if ev.Data.PreviousAttributes["status"] != "needs_response" {
				t.Errorf("closed: previous attributes %v", ev.Data.PreviousAttributes)
			}
		}
		if d.Status != want || (ev.Request != nil && ev.Request.ID != "") {
			t.Errorf("%s: status %s, request %+v", ev.Type, d.Status, ev.Request)
		}
	}
	it := sc.Events.List(&stripe.EventListParams{Type: stripe.String("charge.dispute.*")})
	n := 0
	for it.Next() {
		n++
	}
	if n != 2 {
		t.Errorf("listed %d dispute events", n)
	}
}

// A paid invoice leaves a succeeded charge on its payment intent; the customer is found from the payment intent
// and the charge, as on Stripe. A dispute opened and closed through the admin API is retrievable and its events are
// delivered signed (the receiver verifies them with stripe-go's webhook package).
func TestDisputeLifecycle(t *testing.T) {
	sim, srv := newSim(t, Options{})
	t.Cleanup(sim.Close)
	srvURL := srv.URL
	sim.SetWebhookOptions(WebhookOptions{RetrySchedule: []time.Duration{20 * time.Millisecond}, Timeout: time.Second})
	sc := stripeClient(srvURL, "sk_test_disputes")
	r := newReceiver(t)
	r.secret = must(sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String(r.srv.URL),
		EnabledEvents: stripe.StringSlice([]string{"charge.dispute.created", "charge.dispute.closed"}),
		APIVersion:    stripe.String(stripe.APIVersion)})).Secret
	in, pi, ch := paidCharge(t, sc, 4200)

	code, opened := adminPost(t, srvURL, "/_sim/disputes", `{"payment_intent":"`+pi.ID+`","reason":"product_not_received"}`)
	if code != http.StatusOK {
		t.Fatalf("open: %d %v", code, opened)
	}
	id, _ := opened["id"].(string)
	if !strings.HasPrefix(id, "dp_") || opened["object"] != "dispute" || opened["charge"] != ch.ID ||
		opened["payment_intent"] != pi.ID || opened["amount"] != float64(4200) || opened["currency"] != "usd" ||
		opened["reason"] != "product_not_received" || opened["status"] != "needs_response" || opened["created"] == nil {
		t.Errorf("opened dispute %v", opened)
	}
	dp := must(sc.Disputes.Get(id, nil))
	if dp.Status != stripe.DisputeStatusNeedsResponse || dp.Charge.ID != ch.ID || dp.PaymentIntent.ID != pi.ID {
		t.Errorf("retrieved dispute %+v", dp)
	}
	if !must(sc.Charges.Get(ch.ID, nil)).Disputed {
		t.Error("the charge does not show it is disputed")
	}

	checkDisputeRefusals(t, srvURL, id, in.ID, pi.ID, ch.ID)

	code, closed := adminPost(t, srvURL, "/_sim/disputes/"+id+"/close", `{"status":"lost"}`)
	if code != http.StatusOK || closed["status"] != "lost" || closed["id"] != id {
		t.Fatalf("close: %d %v", code, closed)
	}
	if code, _ := adminPost(t, srvURL, "/_sim/disputes/"+id+"/close", `{"status":"won"}`); code != http.StatusBadRequest {
		t.Errorf("closing a closed dispute: %d", code)
	}

	checkDisputeEvents(t, sc, r, id, ch.ID, pi.ID)

	// Disputes and charges survive a restart of the simulator.
	path := filepath.Join(t.TempDir(), "state.json")
	if err := sim.Save(path); err != nil {
		t.Fatal(err)
	}
	sim2, srv2 := newSim(t, Options{})
	if err := sim2.Load(path); err != nil {
		t.Fatal(err)
	}
	sc2 := stripeClient(srv2.URL, "sk_test_disputes")
	if got := must(sc2.Disputes.Get(id, nil)); got.Status != stripe.DisputeStatusLost {
		t.Errorf("loaded dispute %+v", got)
	}
	if got := must(sc2.Charges.Get(ch.ID, nil)); !got.Disputed {
		t.Errorf("loaded charge %+v", got)
	}
}

// Only a paid charge can be disputed; a declined payment leaves a failed charge, and a payment awaiting
// authentication leaves none. A restricted key needs rak_charge_read to read charges.
func TestDisputeRefusedForUnpaidCharges(t *testing.T) {
	_, srv := newSim(t, Options{})
	sc := stripeClient(srv.URL, "sk_test_unpaid")
	_, pr := fixture(t, sc, 900)
	newSub := func(pm string) *stripe.Invoice {
		t.Helper()
		cus := must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String(pm),
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm)}}))
		return must(subscribe(t, sc, cus, pr, nil)).LatestInvoice
	}
	declined := newSub("pm_card_chargeDeclined")
	pi := must(sc.PaymentIntents.Get(declined.PaymentIntent.ID, nil))
	ch := must(sc.Charges.Get(pi.LatestCharge.ID, nil))
	if ch.Status != "failed" || ch.Paid || ch.FailureCode != "card_declined" {
		t.Errorf("declined charge %+v", ch)
	}
	if code, body := adminPost(t, srv.URL, "/_sim/disputes", `{"invoice":"`+declined.ID+`"}`); code != http.StatusBadRequest ||
		!strings.Contains(body["error"].(string), "did not succeed") {
		t.Errorf("disputing a failed charge: %d %v", code, body)
	}
	auth := newSub("pm_card_authenticationRequired")
	if pi := must(sc.PaymentIntents.Get(auth.PaymentIntent.ID, nil)); pi.LatestCharge != nil {
		t.Errorf("a payment awaiting authentication has charge %+v", pi.LatestCharge)
	}
	if code, body := adminPost(t, srv.URL, "/_sim/disputes", `{"invoice":"`+auth.ID+`"}`); code != http.StatusBadRequest ||
		!strings.Contains(body["error"].(string), "has no charge") {
		t.Errorf("disputing an invoice without a charge: %d %v", code, body)
	}

	if code, _ := adminPost(t, srv.URL, "/_sim/keys",
		`{"key":"rk_test_disputes","permissions":["rak_payment_intent_read"]}`); code != http.StatusOK {
		t.Fatal("registering the restricted key")
	}
	rk := stripeClient(srv.URL, "rk_test_disputes")
	must(rk.PaymentIntents.Get(pi.ID, nil))
	_, err := rk.Charges.Get(ch.ID, nil)
	if info := stripeErr(t, err, http.StatusForbidden, stripe.ErrorTypeInvalidRequest, ""); !strings.Contains(info.Msg,
		"rak_charge_read") {
		t.Errorf("403 names %q", info.Msg)
	}
}
