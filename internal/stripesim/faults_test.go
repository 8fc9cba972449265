package stripesim

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

func firedOf(sim *Sim, id string) int {
	for _, f := range sim.Faults() {
		if f.ID == id {
			return f.Fired
		}
	}
	return -1
}

// Faults acting before execution exclude each other, so each fires with its own rate: 30% 500s and 20% 429s are
// half the requests, not 30% + 70% × 20%.
func TestFaultRatesAreExclusive(t *testing.T) {
	sim, sc := newClient(t, Options{})
	e5 := must(sim.AddFault(Fault{Kind: FaultError, Path: "/v1/products*", Rate: 0.3, Status: 503}))
	e4 := must(sim.AddFault(Fault{Kind: FaultError, Path: "/v1/products*", Rate: 0.2, Status: 429,
		Code: "rate_limit"}))
	const n = 2000
	byStatus := map[int]int{}
	for range n {
		_, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("p")})
		var se *stripe.Error
		switch {
		case err == nil:
			byStatus[200]++
		case errors.As(err, &se):
			byStatus[se.HTTPStatusCode]++
		default:
			t.Fatal(err)
		}
	}
	// Binomial standard deviations are about 20 (30%), 18 (20%) and 22 (50%): allow 4 of them. Drawing the faults
	// one after the other would give the 429s 14% (280).
	if got := byStatus[503]; got < 520 || got > 680 {
		t.Errorf("503 on %d of %d requests, want about 30%%", got, n)
	}
	if got := byStatus[429]; got < 328 || got > 472 {
		t.Errorf("429 on %d of %d requests, want about 20%% (not 14%%)", got, n)
	}
	if got := byStatus[200]; got < 912 || got > 1088 {
		t.Errorf("%d of %d requests succeeded, want about half", got, n)
	}
	if firedOf(sim, e5.ID) != byStatus[503] || firedOf(sim, e4.ID) != byStatus[429] {
		t.Errorf("fired %d and %d, observed %d 503s and %d 429s", firedOf(sim, e5.ID), firedOf(sim, e4.ID),
			byStatus[503], byStatus[429])
	}
	// Rates adding up to more than 1: the earlier fault wins the overlap.
	sim.ClearFaults()
	first := must(sim.AddFault(Fault{Kind: FaultError, Path: "/v1/customers", Status: 503}))
	second := must(sim.AddFault(Fault{Kind: FaultError, Path: "/v1/customers", Status: 500}))
	for range 20 {
		_, err := sc.Customers.New(&stripe.CustomerParams{})
		stripeErr(t, err, 503, stripe.ErrorTypeAPI, "")
	}
	if firedOf(sim, first.ID) != 20 || firedOf(sim, second.ID) != 0 {
		t.Errorf("fired %d and %d", firedOf(sim, first.ID), firedOf(sim, second.ID))
	}
}

// Fired counts a fault only when it acted on the request.
func TestFaultFiredCountsOnlyWhatActed(t *testing.T) {
	t.Run("commit-then-fail behind an error", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		commit := must(sim.AddFault(Fault{Kind: FaultCommitThenFail, Method: "POST", Path: "/v1/customers"}))
		errf := must(sim.AddFault(Fault{Kind: FaultError, Method: "POST", Path: "/v1/customers", Count: 1}))
		_, err := sc.Customers.New(customerWithKey("k1", "uid-1"))
		stripeErr(t, err, 500, stripe.ErrorTypeAPI, "")
		if firedOf(sim, errf.ID) != 1 || firedOf(sim, commit.ID) != 0 {
			t.Errorf("error fired %d, commit-then-fail %d: want 1 and 0", firedOf(sim, errf.ID),
				firedOf(sim, commit.ID))
		}
		if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 0 {
			t.Fatalf("%d customers after an error fault", n)
		}
		// The next request executes, and then fails.
		if _, err := sc.Customers.New(customerWithKey("k1", "uid-1")); err == nil {
			t.Fatal("commit-then-fail did not fail the response")
		}
		if firedOf(sim, commit.ID) != 1 || sim.ObjectsByUID()["customer"]["uid-1"] != 1 {
			t.Errorf("commit-then-fail fired %d", firedOf(sim, commit.ID))
		}
		// A replay of the key is answered from the key: nothing executes, the fault does not act.
		if got := must(sc.Customers.New(customerWithKey("k1", "uid-1"))); got.LastResponse.Header.Get(
			"Idempotent-Replayed") != "true" {
			t.Error("the retry was not a replay")
		}
		if firedOf(sim, commit.ID) != 1 {
			t.Errorf("a replay counted: fired %d", firedOf(sim, commit.ID))
		}
	})
	t.Run("commit-then-fail on a refused request", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		commit := must(sim.AddFault(Fault{Kind: FaultCommitThenFail, Method: "POST", Path: "/v1/prices",
			Count: 1}))
		_, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd")}) // no product: 400
		stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		if firedOf(sim, commit.ID) != 0 {
			t.Fatalf("fired %d on a request that failed validation", firedOf(sim, commit.ID))
		}
		// Still armed (Count 1): the next successful create meets it.
		prod := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("p")}))
		_, err = sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
			UnitAmount: stripe.Int64(100)})
		stripeErr(t, err, 500, stripe.ErrorTypeAPI, "")
		if firedOf(sim, commit.ID) != 1 {
			t.Errorf("fired %d", firedOf(sim, commit.ID))
		}
	})
	t.Run("latency on a replay", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		must(sc.Customers.New(customerWithKey("k2", "uid-2")))
		lat := must(sim.AddFault(Fault{Kind: FaultLatency, Method: "POST", Path: "/v1/customers", LatencyMS: 200}))
		start := time.Now()
		must(sc.Customers.New(customerWithKey("k2", "uid-2"))) // answered from the key
		if d := time.Since(start); d >= 200*time.Millisecond || firedOf(sim, lat.ID) != 0 {
			t.Errorf("a replay took %v, latency fired %d", d, firedOf(sim, lat.ID))
		}
		start = time.Now()
		must(sc.Customers.New(customerWithKey("k3", "uid-3")))
		if d := time.Since(start); d < 200*time.Millisecond || firedOf(sim, lat.ID) != 1 {
			t.Errorf("an executed request took %v, latency fired %d", d, firedOf(sim, lat.ID))
		}
	})
}

// Every event queued for an endpoint is recorded with its number of copies, and attempts say which copy they
// carry; in-flight attempts are counted until they end.
func TestScheduledEventsAndInFlight(t *testing.T) {
	sim, sc, r := webhookSim(t, "customer.created")
	sim.SetWebhookOptions(WebhookOptions{DuplicateFraction: 0.5})
	release := make(chan struct{})
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		<-release
		r.srv.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(held.Close)
	must(sc.WebhookEndpoints.Update(firstEndpoint(t, sc), &stripe.WebhookEndpointParams{URL: stripe.String(held.URL)}))
	const n = 40
	for range n {
		must(sc.Customers.New(&stripe.CustomerParams{}))
	}
	scheduled := sim.ScheduledEvents()
	if len(scheduled) != n {
		t.Fatalf("%d events scheduled, want %d", len(scheduled), n)
	}
	copies := 0
	for _, s := range scheduled {
		if s.EventType != "customer.created" || s.EndpointID == "" || s.Copies < 1 || s.Copies > 2 {
			t.Errorf("scheduled %+v", s)
		}
		copies += s.Copies
	}
	if copies == n || copies == 2*n {
		t.Errorf("%d copies of %d events with half duplicated", copies, n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sim.InFlightDeliveries() != copies && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := sim.InFlightDeliveries(); got != copies || sim.PendingDeliveries() != 0 {
		t.Fatalf("in flight %d, pending %d: want %d and 0 while the receiver holds them", got,
			sim.PendingDeliveries(), copies)
	}
	close(release)
	r.waitFor(t, copies)
	for sim.InFlightDeliveries() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sim.InFlightDeliveries() != 0 {
		t.Errorf("%d still in flight", sim.InFlightDeliveries())
	}
	dups := 0
	for _, d := range sim.Deliveries() {
		if d.Duplicate {
			dups++
		}
	}
	if dups != copies-n {
		t.Errorf("%d attempts marked duplicate, want %d", dups, copies-n)
	}
}
