package stripesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// A renewal day: subscriptions that started together renew together when the account's time passes their
// billing anchor, each with Stripe's renewal events (the subscription's new period, its invoice paid), delivered
// to the endpoint; a subscription whose customer is on a test clock follows its clock, not the account's time.
func TestAccountTimeRenewsEverySubscription(t *testing.T) {
	sim, sc, r := webhookSim(t, "customer.subscription.updated", "invoice.paid", "invoice.payment_succeeded")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	prod := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("Plan")}))
	price := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(2000), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}))
	subscribe := func(clock *string) *stripe.Subscription {
		cus := must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")},
			TestClock:       clock}))
		return must(sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
			Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}}))
	}
	const n = 20
	subs := make([]*stripe.Subscription, 0, n)
	for range n {
		subs = append(subs, subscribe(nil))
	}
	clock := must(sc.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{
		FrozenTime: stripe.Int64(time.Now().Unix())}))
	onClock := subscribe(stripe.String(clock.ID))
	idle(t, sim) // the creations' own events arrive first
	before := len(r.received())

	to := subs[0].CurrentPeriodEnd + 60
	body, _ := json.Marshal(map[string]any{"frozen_time": to})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/_sim/accounts/time",
		bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got AccountTime
	_ = json.NewDecoder(resp.Body).Decode(&got)
	_ = resp.Body.Close()
	// Each renewal emits the subscription's update and its invoice's events (created, finalized, paid, ...); the
	// endpoint takes three of them.
	if resp.StatusCode != http.StatusOK || got.Steps != n || got.Events < 3*n || got.FrozenTime != to {
		t.Fatalf("advance: %d %+v, want %d steps and at least %d events", resp.StatusCode, got, n, 3*n)
	}
	evs := r.waitFor(t, before+3*n)[before:]
	idle(t, sim)
	if extra := len(r.received()) - before - 3*n; extra != 0 {
		t.Errorf("%d events delivered beyond the three of each renewal", extra)
	}
	byType := map[string]map[string]bool{}
	for _, ev := range evs {
		sub, _ := ev.Data.Object["subscription"].(string)
		if ev.Data.Object["object"] == "subscription" {
			sub, _ = ev.Data.Object["id"].(string)
		}
		if byType[string(ev.Type)] == nil {
			byType[string(ev.Type)] = map[string]bool{}
		}
		byType[string(ev.Type)][sub] = true
		if ev.Created < subs[0].CurrentPeriodEnd {
			t.Errorf("%s created at %d, before the anchor %d", ev.Type, ev.Created, subs[0].CurrentPeriodEnd)
		}
	}
	for _, s := range subs {
		got := must(sc.Subscriptions.Get(s.ID, nil))
		if got.CurrentPeriodStart != s.CurrentPeriodEnd || got.Status != stripe.SubscriptionStatusActive {
			t.Errorf("%s: period starts %d (want %d), status %s", s.ID, got.CurrentPeriodStart, s.CurrentPeriodEnd,
				got.Status)
		}
		for _, typ := range []string{"customer.subscription.updated", "invoice.paid", "invoice.payment_succeeded"} {
			if !byType[typ][s.ID] {
				t.Errorf("%s: no %s delivered", s.ID, typ)
			}
		}
	}
	if got := must(sc.Subscriptions.Get(onClock.ID, nil)); got.CurrentPeriodStart != onClock.CurrentPeriodStart {
		t.Errorf("the subscription on a test clock moved with the account: %d -> %d", onClock.CurrentPeriodStart,
			got.CurrentPeriodStart)
	}
	// The account's time stays moved: a customer created now lives at it.
	if cus := must(sc.Customers.New(&stripe.CustomerParams{})); cus.Created < to {
		t.Errorf("a customer created after the move has created %d, before the account's time %d", cus.Created, to)
	}
	// It only moves forward.
	if _, err := sim.AdvanceAccountTime("", to-10); err == nil {
		t.Error("moving the account's time backwards was accepted")
	}
}

// Deliveries are bounded by the concurrency option: a slow endpoint never sees more attempts at once than the
// bound, every event still arrives, and each attempt records how long the endpoint took.
func TestDeliveryConcurrencyIsBounded(t *testing.T) {
	sim, _ := newSim(t, Options{})
	t.Cleanup(sim.Close)
	var inFlight, peak atomic.Int32
	var mu sync.Mutex
	seen := map[string]bool{}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := inFlight.Add(1)
		for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		var ev struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		seen[ev.ID] = true
		mu.Unlock()
		inFlight.Add(-1)
	}))
	t.Cleanup(slow.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sc := stripeClient(srv.URL, "sk_test_concurrency")
	must(sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String(slow.URL),
		EnabledEvents: stripe.StringSlice([]string{"customer.created"})}))
	sim.SetWebhookOptions(WebhookOptions{Concurrency: 3, Paused: true})
	const n = 24
	for i := range n {
		must(sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprint(i))}))
	}
	sim.SetWebhookOptions(WebhookOptions{Concurrency: 3})
	idle(t, sim)
	mu.Lock()
	delivered := len(seen)
	mu.Unlock()
	if delivered != n {
		t.Fatalf("%d of %d events delivered", delivered, n)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("%d attempts in flight at once, want at most 3 (and more than one)", p)
	}
	for _, d := range sim.Deliveries() {
		if d.Duration < 30*time.Millisecond {
			t.Errorf("attempt of %s took %v by its record, the endpoint takes 30 ms", d.EventID, d.Duration)
		}
	}
}

// idle waits until the simulator has no delivery queued or under way.
func idle(t *testing.T, sim *Sim) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sim.PendingDeliveries() > 0 || sim.InFlightDeliveries() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still queued (%d) or in flight (%d)", sim.PendingDeliveries(), sim.InFlightDeliveries())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
