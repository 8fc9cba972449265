package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// BenchmarkWebhooks measures the production setup: the operator runs its webhook receiver and registers it with
// stripesim, which delivers signed events; the receiver stores them as StripeEvents and the operator's worker folds
// them into status. It creates N Customers and N Subscriptions (over 3 Prices) at once, in two loads: Customers with
// the test card that pays (nothing fails), and Customers without a card (every first invoice fails). Each runs at
// N with 100 requests/s and at 2N/5 with 25 requests/s (Stripe's test-mode limit), the operator's budget set to the
// same rate. The bound is the Stripe creates needed (one per object) divided by the rate.
//
// Convergence is timed twice: until every object is Ready (convergence_seconds), and until, besides, stripesim has
// delivered every event and every stored StripeEvent is settled (settled_seconds). The per-object costs are counted
// until the latter.
func BenchmarkWebhooks(b *testing.B) {
	n := benchN()
	for _, run := range []struct {
		n    int
		rate float64
	}{{n, 100}, {max(1, n*2/5), 25}} {
		for _, load := range []struct {
			name string
			card bool
		}{{"cards", true}, {"nocards", false}} {
			b.Run(fmt.Sprintf("%s_n%d_rate%g", load.name, run.n, run.rate), func(b *testing.B) {
				benchWebhookLoad(b, "webhooks_"+load.name+"_", run.n, run.rate, load.card)
			})
		}
	}
}

func benchWebhookLoad(b *testing.B, prefix string, n int, rate float64, card bool) {
	r := startRig(b, rigConfig{rate: rate, resync: 10 * time.Hour, webhooks: true})
	r.createCatalogue(b, 3)
	// The catalogue's own events are folded before the timed phase.
	r.waitSettled(b, 2*time.Minute)
	raw := rawWriteRate(b, r.ctx, r.c, 1000)
	// Let the bucket refill so the timed phase starts from the same state as a quiet account.
	time.Sleep(2 * time.Second)
	before := r.snapshot(b)

	start := time.Now()
	if path := os.Getenv("BENCH_APISERVER_PROFILE"); path != "" {
		// A CPU profile of the API server while the load converges (where the machine's time goes).
		go func() {
			cs, err := kubernetes.NewForConfig(r.cfg)
			if err != nil {
				return
			}
			data, err := cs.RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "15").DoRaw(r.ctx)
			if err == nil {
				_ = os.WriteFile(fmt.Sprintf("%s.%s%d", path, prefix, n), data, 0o600)
			}
		}()
	}
	createAll(b, r.ctx, r.c, customersWithSubscriptions(n, 3, card))
	applied := time.Since(start)
	waitAllReady(b, r.ctx, r.c, benchNS, 4+2*n, 30*time.Minute)
	ready := time.Since(start)
	r.waitSettled(b, 15*time.Minute)
	settled := time.Since(start)

	cost := r.costsSince(b, before)
	objects := float64(2 * n)
	bound := objects / rate
	extra := runExtra(n, rate)
	extra["card"] = card
	convergence(prefix, applied, ready, bound, extra)
	apiBound(prefix, settled, cost.apiWrites, raw, extra)
	figure(prefix+"settled_seconds", settled.Seconds(), "s", extra)
	figure(prefix+"settled_ratio", settled.Seconds()/bound, "ratio", extra)
	cost.report(prefix, objects, extra)
	if cost.duplicates != 0 {
		b.Errorf("%d duplicate Stripe objects", cost.duplicates)
	}
}
