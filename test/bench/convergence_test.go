// Package bench holds the benchmarks that print the operator's figures as JSON lines (name, value, unit). They run
// the real API server (envtest), the operator in-process, and stripesim over HTTP; `make bench` runs them.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// figure prints one result as a JSON line.
func figure(name string, value float64, unit string, extra map[string]any) {
	m := map[string]any{"name": name, "value": value, "unit": unit}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	fmt.Println(string(b))
}

// probeNS holds the objects a user applies while a benchmark's load runs.
const probeNS = "probe"

func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_N")); err == nil && n > 0 {
		return n
	}
	if os.Getenv("BENCH_QUICK") != "" {
		return 200
	}
	return 1000
}

// BenchmarkConvergence creates N Customers and N Subscriptions (over 3 Prices) at once and measures the time until
// all are Ready, against stripesim rate-limited at 100 requests/s, with the operator's budget set to the same
// 100/s. The bound is the Stripe writes needed (one create per object) divided by 100/s. It runs without webhooks;
// BenchmarkWebhooks measures the production setup.
func BenchmarkConvergence(b *testing.B) {
	n := benchN()
	const rate = 100
	r := startRig(b, rigConfig{rate: rate, resync: 10 * time.Hour})
	ctx, c := r.ctx, r.c
	r.createCatalogue(b, 3)
	must(b, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS}}))
	must(b, c.Create(ctx, &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: probeNS, Name: "probe"},
		Spec: billingv1.CustomerSpec{Email: "probe@example.com"}}))
	waitAllReady(b, ctx, c, probeNS, 1, time.Minute)
	price0 := &billingv1.Price{}
	must(b, c.Get(ctx, client.ObjectKey{Namespace: benchNS, Name: "price-0"}, price0))
	raw := rawWriteRate(b, ctx, c, 1000)
	// Let the bucket refill so the timed phase starts from the same state as a quiet account.
	time.Sleep(2 * time.Second)
	before := r.snapshot(b)

	start := time.Now()
	objs := customersWithSubscriptions(n, 3, false)
	// While the load converges, a user applies one new Subscription at a time and waits for it to be Ready.
	probed := make(chan []time.Duration)
	loadDone := make(chan struct{})
	go func() { probed <- probeTimeToReady(b, ctx, c, price0.Status.ID, loadDone) }()
	createAll(b, ctx, c, objs)
	applied := time.Since(start)
	waitAllReady(b, ctx, c, benchNS, 4+2*n, 30*time.Minute)
	elapsed := time.Since(start)
	close(loadDone)
	probes := <-probed

	// The API server's writes include the benchmark's own creates and the probes' (a create, then the operator's).
	cost := r.costsSince(b, before)
	needed := float64(2 * n)
	extra := runExtra(n, rate)
	convergence("", applied, elapsed, needed/rate, extra)
	apiBound("", elapsed, cost.apiWrites, raw, extra)
	// The probes' Stripe calls are in the simulator's counts: per object means per load and probe object.
	cost.report("", needed+float64(len(probes)), extra)
	if len(probes) > 0 {
		slices.Sort(probes)
		pextra := maps.Clone(extra)
		pextra["samples"] = len(probes)
		figure("time_to_ready_other_namespace_p50_ms", ms(probes[len(probes)/2]), "ms", pextra)
		figure("time_to_ready_other_namespace_p99_ms", ms(probes[(len(probes)*99)/100]), "ms", pextra)
	}
	if cost.duplicates != 0 {
		b.Errorf("%d duplicate Stripe objects", cost.duplicates)
	}
}

// probeTimeToReady creates, every two seconds until done closes, a new Subscription in namespace probe for the
// probe Customer on the given price (each on its own, as different users would), and returns how long each took to
// become Ready.
func probeTimeToReady(b *testing.B, ctx context.Context, c client.Client, priceID string,
	done <-chan struct{}) []time.Duration {
	var (
		mu   sync.Mutex
		took []time.Duration
		wg   sync.WaitGroup
	)
	probe := func(i int) {
		defer wg.Done()
		sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: probeNS, Name: fmt.Sprintf("probe-%d", i)},
			Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: "probe"},
				Items: []billingv1.SubscriptionItem{{PriceID: priceID}}}}
		start := time.Now()
		if err := c.Create(ctx, sub); err != nil {
			b.Error(err)
			return
		}
		for !meta.IsStatusConditionTrue(sub.Status.Conditions, billingv1.ConditionReady) {
			time.Sleep(20 * time.Millisecond)
			if err := c.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		took = append(took, time.Since(start))
		mu.Unlock()
	}
	for i := 0; ; i++ {
		select {
		case <-done:
			wg.Wait()
			return took
		case <-time.After(2 * time.Second):
		}
		wg.Add(1)
		go probe(i)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
