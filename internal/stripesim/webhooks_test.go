package stripesim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"
)

// receiver is a webhook endpoint that verifies every delivery with stripe-go's webhook package.
type receiver struct {
	t      *testing.T
	secret string
	// anyVersion accepts events of another API version (verified all the same).
	anyVersion bool
	mu         sync.Mutex
	events     []stripe.Event
	// fail answers 500 to the first fail attempts of each event.
	fail     int
	attempts map[string]int
	srv      *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		payload, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		ev, err := webhook.ConstructEventWithOptions(payload, req.Header.Get("Stripe-Signature"), r.secret,
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: r.anyVersion})
		if err != nil {
			t.Errorf("delivery failed verification: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.attempts[ev.ID]++
		if r.attempts[ev.ID] <= r.fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.events = append(r.events, ev)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []stripe.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *receiver) waitFor(t *testing.T, n int) []stripe.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if evs := r.received(); len(evs) >= n {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("received %d events, want %d", len(r.received()), n)
	return nil
}

func webhookSim(t *testing.T, enabled ...string) (*Sim, *client.API, *receiver) {
	t.Helper()
	sim, srv := newSim(t, Options{})
	t.Cleanup(sim.Close)
	sim.SetWebhookOptions(WebhookOptions{RetrySchedule: []time.Duration{20 * time.Millisecond,
		40 * time.Millisecond, 80 * time.Millisecond}, Timeout: time.Second})
	sc := stripeClient(srv.URL, "sk_test_webhooks")
	r := newReceiver(t)
	if len(enabled) == 0 {
		enabled = []string{"*"}
	}
	ep := must(sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String(r.srv.URL),
		EnabledEvents: stripe.StringSlice(enabled), APIVersion: stripe.String(stripe.APIVersion)}))
	if !strings.HasPrefix(ep.Secret, "whsec_") || ep.APIVersion != stripe.APIVersion {
		t.Fatalf("endpoint: %+v", ep)
	}
	r.secret = ep.Secret
	return sim, sc, r
}

func TestEveryMutationEmitsItsEvent(t *testing.T) {
	_, sc, r := webhookSim(t)
	cp := &stripe.CustomerParams{Name: stripe.String("Before"), PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}
	cp.SetIdempotencyKey("create-key")
	cus := must(sc.Customers.New(cp))
	must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{Name: stripe.String("After")}))
	prod, pr := fixture(t, sc, 500)
	must(sc.Prices.Update(pr.ID, &stripe.PriceParams{Nickname: stripe.String("n")}))
	sub := must(sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}}))
	must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}))
	must(sc.Subscriptions.Cancel(sub.ID, nil))
	empty := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("Empty")}))
	must(sc.Products.Update(prod.ID, &stripe.ProductParams{Description: stripe.String("d")}))
	must(sc.Products.Del(empty.ID, nil))
	must(sc.Customers.Del(cus.ID, nil))

	want := []string{"customer.created", "customer.updated", "product.created", "price.created", "price.updated",
		"customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.paid",
		"invoice.payment_succeeded", "customer.subscription.updated", "customer.subscription.deleted",
		"product.updated", "product.deleted", "customer.deleted"}
	evs := r.waitFor(t, len(want)+1) // + the empty product's product.created
	got := map[string]stripe.Event{}
	for _, ev := range evs {
		got[string(ev.Type)] = ev
		if ev.APIVersion != stripe.APIVersion || ev.Data == nil || ev.Data.Object == nil || ev.Created == 0 {
			t.Errorf("malformed event %+v", ev)
		}
	}
	for _, typ := range want {
		if _, ok := got[typ]; !ok {
			t.Errorf("no %s event", typ)
		}
	}
	created := got["customer.created"]
	if created.Request == nil || created.Request.IdempotencyKey != "create-key" || created.Request.ID == "" {
		t.Errorf("customer.created request: %+v", created.Request)
	}
	updated := got["customer.updated"]
	if updated.Data.PreviousAttributes["name"] != "Before" || updated.Data.Object["name"] != "After" {
		t.Errorf("customer.updated data: object name %v, previous %v", updated.Data.Object["name"],
			updated.Data.PreviousAttributes)
	}
	if got["invoice.paid"].Data.Object["subscription"] != sub.ID {
		t.Errorf("invoice.paid names subscription %v", got["invoice.paid"].Data.Object["subscription"])
	}

	// The events can be listed and retrieved.
	it := sc.Events.List(&stripe.EventListParams{Type: stripe.String("customer.*")})
	n := 0
	for it.Next() {
		if !strings.HasPrefix(string(it.Event().Type), "customer.") {
			t.Errorf("type filter let through %s", it.Event().Type)
		}
		n++
	}
	if it.Err() != nil || n < 4 {
		t.Errorf("listed %d customer events (%v)", n, it.Err())
	}
	ev := must(sc.Events.Get(created.ID, nil))
	if ev.Type != "customer.created" {
		t.Errorf("retrieved %s", ev.Type)
	}
}

func TestRetriesStopAfterSuccess(t *testing.T) {
	sim, sc, r := webhookSim(t, "customer.created")
	r.fail = 2
	cus := must(sc.Customers.New(&stripe.CustomerParams{}))
	must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{Name: stripe.String("not enabled")}))
	evs := r.waitFor(t, 1)
	time.Sleep(300 * time.Millisecond) // longer than the whole retry schedule
	if len(r.received()) != 1 || evs[0].Type != "customer.created" {
		t.Fatalf("received %v", r.received())
	}
	attempts := 0
	for _, d := range sim.Deliveries() {
		if d.EventID == evs[0].ID {
			attempts++
		}
	}
	if attempts != 3 {
		t.Errorf("%d attempts: want 2 failures and 1 success, then none", attempts)
	}
	if sim.PendingDeliveries() != 0 {
		t.Errorf("%d deliveries still queued", sim.PendingDeliveries())
	}
}

func TestRetriesGiveUpAfterTheSchedule(t *testing.T) {
	sim, sc, r := webhookSim(t, "customer.created")
	r.fail = 100
	must(sc.Customers.New(&stripe.CustomerParams{}))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (len(sim.Deliveries()) < 4 || sim.PendingDeliveries() > 0) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(sim.Deliveries()); n != 4 {
		t.Errorf("%d attempts, want the first and 3 retries", n)
	}
}

func TestShuffleDuplicateAndPause(t *testing.T) {
	sim, sc, r := webhookSim(t, "customer.created")
	sim.SetWebhookOptions(WebhookOptions{ShuffleWindow: 300 * time.Millisecond, DuplicateFraction: 1, Paused: true})
	ids := make([]string, 0, 20)
	for i := range 20 {
		ids = append(ids, must(sc.Customers.New(&stripe.CustomerParams{Name: stripe.String(fmt.Sprint(i))})).ID)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(r.received()); n != 0 {
		t.Fatalf("%d deliveries while paused", n)
	}
	sim.SetWebhookOptions(WebhookOptions{ShuffleWindow: 300 * time.Millisecond, DuplicateFraction: 1})
	evs := r.waitFor(t, 40)
	seen := map[string]int{}
	var order []string
	for _, ev := range evs {
		id, _ := ev.Data.Object["id"].(string)
		if seen[id] == 0 {
			order = append(order, id)
		}
		seen[id]++
	}
	for _, id := range ids {
		if seen[id] != 2 {
			t.Errorf("%s delivered %d times, want 2", id, seen[id])
		}
	}
	if slices.Equal(order, ids) {
		t.Error("shuffling kept the creation order of 20 events")
	}
}

func TestWebhookEndpointsAPI(t *testing.T) {
	_, srv := newSim(t, Options{})
	sc := stripeClient(srv.URL, "sk_test_endpoints")
	ep := must(sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String("https://example.com/hook"),
		EnabledEvents: stripe.StringSlice([]string{"customer.created"})}))
	got := must(sc.WebhookEndpoints.Get(ep.ID, nil))
	if got.Secret != "" || got.URL != "https://example.com/hook" || got.APIVersion != stripe.APIVersion {
		t.Errorf("retrieved endpoint %+v (the secret is shown only at creation)", got)
	}
	up := must(sc.WebhookEndpoints.Update(ep.ID, &stripe.WebhookEndpointParams{
		EnabledEvents: stripe.StringSlice([]string{"*"}), Disabled: stripe.Bool(true)}))
	if up.Status != "disabled" || len(up.EnabledEvents) != 1 || up.EnabledEvents[0] != "*" {
		t.Errorf("updated endpoint %+v", up)
	}
	it := sc.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{})
	n := 0
	for it.Next() {
		n++
	}
	if n != 1 {
		t.Errorf("listed %d endpoints", n)
	}
	if d := must(sc.WebhookEndpoints.Del(ep.ID, nil)); !d.Deleted {
		t.Errorf("delete: %+v", d)
	}
	_, err := sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String("not a url"),
		EnabledEvents: stripe.StringSlice([]string{"*"})})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
}

func TestWebhookAdminAPI(t *testing.T) {
	_, srv := newSim(t, Options{})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/_sim/webhooks",
		strings.NewReader(`{"retry_schedule_ms":[10,20],"shuffle_window_ms":50,"duplicate_fraction":0.3}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var got webhookOptionsBody
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if !slices.Equal(got.RetryScheduleMS, []int{10, 20}) || got.ShuffleWindowMS != 50 || got.DuplicateFraction != 0.3 {
		t.Errorf("options %+v", got)
	}
}

func TestSlowEndpointIsRetried(t *testing.T) {
	sim, sc, r := webhookSim(t, "customer.created")
	sim.SetWebhookOptions(WebhookOptions{RetrySchedule: []time.Duration{20 * time.Millisecond},
		Timeout: 100 * time.Millisecond})
	var mu sync.Mutex
	calls := 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			time.Sleep(300 * time.Millisecond) // longer than the attempt timeout
		}
		r.srv.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(slow.Close)
	must(sc.WebhookEndpoints.Update(firstEndpoint(t, sc), &stripe.WebhookEndpointParams{URL: stripe.String(slow.URL)}))
	must(sc.Customers.New(&stripe.CustomerParams{}))
	r.waitFor(t, 1)
	// The attempt is recorded just after the receiver answers.
	deadline := time.Now().Add(5 * time.Second)
	for len(sim.Deliveries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	deliveries := sim.Deliveries()
	statuses := make([]string, 0, len(deliveries))
	for _, d := range deliveries {
		statuses = append(statuses, fmt.Sprintf("%d:%s", d.Status, d.Error))
	}
	if len(statuses) != 2 || !strings.Contains(statuses[0], "deadline") {
		t.Errorf("attempts %v: want a timed-out attempt, then a successful retry", statuses)
	}
}

func firstEndpoint(t *testing.T, sc *client.API) string {
	t.Helper()
	it := sc.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{})
	if !it.Next() {
		t.Fatal("no webhook endpoint")
	}
	return it.WebhookEndpoint().ID
}

func TestEventsCarryTheEndpointsAPIVersionAndDelay(t *testing.T) {
	sim, srv := newSim(t, Options{})
	t.Cleanup(sim.Close)
	sim.SetWebhookOptions(WebhookOptions{Delay: 400 * time.Millisecond})
	sc := stripeClient(srv.URL, "sk_test_versions")
	r := newReceiver(t)
	r.anyVersion = true
	ep := must(sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String(r.srv.URL),
		EnabledEvents: stripe.StringSlice([]string{"customer.created"}), APIVersion: stripe.String("2022-11-15")}))
	r.secret = ep.Secret
	must(sc.Customers.New(&stripe.CustomerParams{}))
	time.Sleep(250 * time.Millisecond)
	if n := len(r.received()); n != 0 {
		t.Fatalf("%d deliveries before the configured delay", n)
	}
	ev := r.waitFor(t, 1)[0]
	if ev.APIVersion != "2022-11-15" {
		t.Errorf("event rendered for %s, want the endpoint's 2022-11-15", ev.APIVersion)
	}
	// stripe-go v76 refuses it unless told to ignore the mismatch: the operator's receiver must handle that.
	if _, err := webhook.ConstructEvent([]byte(`{"id":"evt_1","object":"event","api_version":"2022-11-15"}`),
		sign(ep.Secret, time.Now(), []byte(`{"id":"evt_1","object":"event","api_version":"2022-11-15"}`)),
		ep.Secret); err == nil {
		t.Error("stripe-go accepted an event of another API version")
	}
}
