package bench

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// BenchmarkFairNamespaces starts the same load in five namespaces at once (N/5 Customers and N/5 Subscriptions
// each, at 100 requests/s) and reports when each namespace's objects were all Ready: with namespaces taking turns in
// the work queues and the rate budget, they finish together (spread: (slowest - fastest) / mean).
func BenchmarkFairNamespaces(b *testing.B) {
	const namespaces, rate = 5, 100
	per := benchN() / namespaces
	r := startRig(b, rigConfig{rate: rate, resync: 10 * time.Hour})
	ctx, c := r.ctx, r.c
	r.createCatalogue(b, 1)
	price := &billingv1.Price{}
	must(b, c.Get(ctx, client.ObjectKey{Namespace: benchNS, Name: "price-0"}, price))
	names := make([]string, namespaces)
	for i := range names {
		names[i] = fmt.Sprintf("tenant-%d", i)
		must(b, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names[i]}}))
	}
	time.Sleep(2 * time.Second)
	before := r.snapshot(b)
	start := time.Now()
	done := make([]time.Duration, namespaces)
	var wg sync.WaitGroup
	for i, ns := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			createAll(b, ctx, c, tenantLoad(ns, per, price.Status.ID))
			waitAllReady(b, ctx, c, ns, 2*per, 30*time.Minute)
			done[i] = time.Since(start)
		}()
	}
	wg.Wait()
	elapsed := slices.Max(done)
	mean := 0.0
	for _, d := range done {
		mean += d.Seconds() / namespaces
	}
	extra := runExtra(benchN(), rate)
	extra["namespaces"] = namespaces
	for i, d := range done {
		extra[names[i]+"_s"] = math.Round(d.Seconds()*10) / 10
	}
	figure("fair_namespaces_completion_spread", (slices.Max(done).Seconds()-slices.Min(done).Seconds())/mean, "ratio",
		extra)
	convergence("fair_namespaces_", elapsed, elapsed, float64(2*per*namespaces)/rate, extra)
	if cost := r.costsSince(b, before); cost.duplicates != 0 {
		b.Errorf("%d duplicate Stripe objects", cost.duplicates)
	}
}

// tenantLoad is n Customers, each with a Subscription on the price, in a namespace with no credentials Secret of
// its own (the operator-wide one serves it), in a closed channel.
func tenantLoad(ns string, n int, priceID string) chan client.Object {
	objs := make(chan client.Object, 2*n)
	for i := range n {
		cus := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cus-%d", i)},
			Spec: billingv1.CustomerSpec{Email: fmt.Sprintf("c%d@%s.example.com", i, ns)}}
		objs <- cus
		objs <- &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("sub-%d", i)},
			Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: cus.Name},
				Items: []billingv1.SubscriptionItem{{PriceID: priceID, Quantity: ptr.To[int64](1)}}}}
	}
	close(objs)
	return objs
}

// BenchmarkRestart converges N Customers (10,000; 1,000 with BENCH_QUICK), restarts the operator as a new pod would
// start, and reports the Stripe calls it makes for them in the window that follows (10 minutes; 1 with
// BENCH_QUICK; their resync is not due, so the target is none) and how long new Customers, applied from 1 s after the
// restart one every 200 ms for 10 s, take to be Ready.
func BenchmarkRestart(b *testing.B) {
	n, window := 10000, 10*time.Minute
	if os.Getenv("BENCH_QUICK") != "" {
		n, window = 1000, time.Minute
	}
	const rate = 500
	r := startRig(b, rigConfig{rate: rate, resync: 10 * time.Hour})
	ctx, c := r.ctx, r.c
	objs := make(chan client.Object, n)
	for i := range n {
		objs <- &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: fmt.Sprintf("cus-%d", i)},
			Spec: billingv1.CustomerSpec{Email: fmt.Sprintf("c%d@example.com", i)}}
	}
	close(objs)
	createAll(b, ctx, c, objs)
	waitAllReady(b, ctx, c, benchNS, n, 30*time.Minute)
	must(b, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS}}))
	time.Sleep(2 * time.Second)

	before := r.sim.Stats()
	restarted := time.Now()
	r.restart()
	time.Sleep(time.Until(restarted.Add(time.Second)))
	took := probeCustomers(b, r, 50, 200*time.Millisecond)
	time.Sleep(time.Until(restarted.Add(window)))
	sc := stripeDelta(before, r.sim.Stats())
	// The probes' own creates are not calls for the objects that were in sync.
	calls := sc.calls - int64(len(took))
	extra := map[string]any{"objects": n, "window_s": window.Seconds(), "probes": len(took), "rate": rate,
		"machine": "2 cores", "date": time.Now().Format("2006-01-02")}
	figure("restart_stripe_calls", float64(calls), "calls", extra)
	slices.Sort(took)
	figure("time_to_ready_after_restart_p50_ms", ms(took[len(took)/2]), "ms", extra)
	figure("time_to_ready_after_restart_p99_ms", ms(took[(len(took)*99)/100]), "ms", extra)
}

// probeCustomers applies count Customers in namespace probe, one every interval, each waited for on its own, and
// returns how long each took to be Ready.
func probeCustomers(b *testing.B, r *rig, count int, interval time.Duration) []time.Duration {
	var (
		mu   sync.Mutex
		took []time.Duration
		wg   sync.WaitGroup
	)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cus := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: probeNS,
				Name: fmt.Sprintf("probe-%d", i)}, Spec: billingv1.CustomerSpec{Email: "probe@example.com"}}
			start := time.Now()
			if err := r.c.Create(r.ctx, cus); err != nil {
				b.Error(err)
				return
			}
			for !meta.IsStatusConditionTrue(cus.Status.Conditions, billingv1.ConditionReady) {
				time.Sleep(20 * time.Millisecond)
				if err := r.c.Get(r.ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
					b.Error(err)
					return
				}
			}
			mu.Lock()
			took = append(took, time.Since(start))
			mu.Unlock()
		}()
		time.Sleep(interval)
	}
	wg.Wait()
	return took
}
