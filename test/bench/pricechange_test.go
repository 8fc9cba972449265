package bench

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// BenchmarkPriceChange measures a catalogue-wide price change in the production setup (webhooks on, stripesim at
// 25 requests/s): N Products with one monthly Price each (lookup keys set), then every Price's unit amount is changed
// at once. Each change rolls the Price to a successor (created with the lookup key transferred) and archives the old
// price. Figures: price_change_seconds until every Price is Ready on its successor, price_change_calls_per_price
// (Stripe calls in that window per Price), and their API writes.
func BenchmarkPriceChange(b *testing.B) {
	n := max(1, benchN()/10)
	const rate = 25
	r := startRig(b, rigConfig{rate: rate, resync: 10 * time.Hour, webhooks: true})
	for i := range n {
		must(b, r.c.Create(r.ctx, &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS,
			Name: fmt.Sprintf("prod-%d", i)}, Spec: billingv1.ProductSpec{Name: fmt.Sprintf("Plan %d", i)}}))
		must(b, r.c.Create(r.ctx, &billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS,
			Name: fmt.Sprintf("price-%d", i)}, Spec: billingv1.PriceSpec{
			ProductRef: &billingv1.LocalObjectReference{Name: fmt.Sprintf("prod-%d", i)}, Currency: "usd",
			UnitAmount: 1000, Recurring: &billingv1.Recurring{Interval: billingv1.IntervalMonth},
			LookupKey: fmt.Sprintf("plan-%d-monthly", i)}}))
	}
	waitAllReady(b, r.ctx, r.c, benchNS, 2*n, 5*time.Minute)
	r.waitSettled(b, 2*time.Minute)
	// Let the bucket refill so the timed phase starts from the same state as a quiet account.
	time.Sleep(2 * time.Second)
	before := r.snapshot(b)
	old := map[string]string{}

	start := time.Now()
	for i := range n {
		p := &billingv1.Price{}
		must(b, r.c.Get(r.ctx, client.ObjectKey{Namespace: benchNS, Name: fmt.Sprintf("price-%d", i)}, p))
		old[p.Name] = p.Status.ID
		p.Spec.UnitAmount = 1500
		must(b, r.c.Update(r.ctx, p))
	}
	waitRolled(b, r, old, 5*time.Minute)
	elapsed := time.Since(start)
	r.waitSettled(b, 5*time.Minute)

	cost := r.costsSince(b, before)
	// Each Price has two Stripe prices by design (the original, archived, and its successor): one more is expected.
	cost.duplicates -= n
	if cost.duplicates != 0 {
		b.Errorf("%d Stripe prices more than one successor per Price", cost.duplicates)
	}
	extra := runExtra(n, rate)
	figure("price_change_seconds", elapsed.Seconds(), "s", extra)
	m := maps.Clone(extra)
	m["calls"], m["by_endpoint_reads"], m["by_endpoint_lists"] = cost.stripe.calls, cost.stripe.readsByEndpoint,
		cost.stripe.listsByEndpoint
	figure("price_change_calls_per_price", float64(cost.stripe.calls)/float64(n), "calls", m)
	cost.report("price_change_", float64(n), extra)
}

// waitRolled waits until every Price named in old is Ready for its current generation on another Stripe price.
func waitRolled(b *testing.B, r *rig, old map[string]string, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l := &billingv1.PriceList{}
		must(b, r.c.List(r.ctx, l, client.InNamespace(benchNS)))
		done := 0
		for _, p := range l.Items {
			c := meta.FindStatusCondition(p.Status.Conditions, billingv1.ConditionReady)
			if id, ok := old[p.Name]; ok && p.Status.ID != id && c != nil && c.Status == metav1.ConditionTrue &&
				p.Status.ObservedGeneration == p.Generation {
				done++
			}
		}
		if done == len(old) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("not every Price rolled within %v", timeout)
}
