// Package bench holds the benchmarks that print the operator's figures as JSON lines (name, value, unit). They run
// the real API server (envtest), the operator in-process, and stripesim over HTTP; `make bench` runs them.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/operator"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
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
// 100/s. The bound is the Stripe writes needed (one create per object) divided by 100/s.
func BenchmarkConvergence(b *testing.B) {
	n := benchN()
	const rate = 100
	ctx, c, sim, cfg := startRig(b, rate, 10*time.Hour)
	ns := benchNS
	// The catalogue: one Product, three Prices.
	must(b, c.Create(ctx, &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plan"},
		Spec: billingv1.ProductSpec{Name: "Plan"}}))
	for i := range 3 {
		must(b, c.Create(ctx, &billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
			Name: fmt.Sprintf("price-%d", i)}, Spec: billingv1.PriceSpec{
			ProductRef: &billingv1.LocalObjectReference{Name: "plan"}, Currency: "usd", UnitAmount: int64(1000 + i),
			Recurring: &billingv1.Recurring{Interval: billingv1.IntervalMonth}}}))
	}
	must(b, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS}}))
	must(b, c.Create(ctx, &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: probeNS, Name: "probe"},
		Spec: billingv1.CustomerSpec{Email: "probe@example.com"}}))
	waitAllReady(b, ctx, c, ns, 4, 2*time.Minute)
	waitAllReady(b, ctx, c, probeNS, 1, time.Minute)
	price0 := &billingv1.Price{}
	must(b, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "price-0"}, price0))
	// Let the bucket refill so the timed phase starts from the same state as a quiet account.
	time.Sleep(2 * time.Second)
	before := sim.Stats()
	writesBefore := apiWrites(b, ctx, cfg)

	start := time.Now()
	objs := make(chan client.Object, 2*n)
	for i := range n {
		objs <- &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cus-%d", i)},
			Spec: billingv1.CustomerSpec{Email: fmt.Sprintf("c%d@example.com", i)}}
		objs <- &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("sub-%d", i)},
			Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: fmt.Sprintf("cus-%d", i)},
				Items: []billingv1.SubscriptionItem{{PriceRef: &billingv1.LocalObjectReference{
					Name: fmt.Sprintf("price-%d", i%3)}, Quantity: ptr.To[int64](1)}}}}
	}
	close(objs)
	// While the load converges, a user applies one new Subscription at a time and waits for it to be Ready.
	probed := make(chan []time.Duration)
	loadDone := make(chan struct{})
	go func() { probed <- probeTimeToReady(b, ctx, c, price0.Status.ID, loadDone) }()
	createAll(b, ctx, c, objs)
	applied := time.Since(start)
	waitAllReady(b, ctx, c, ns, 4+2*n, 30*time.Minute)
	elapsed := time.Since(start)
	close(loadDone)
	probes := <-probed

	calls, writes, limited := delta(before, sim.Stats())
	// The API server's writes, less the benchmark's own creates and the probes' (a create, then the operator's).
	kubeWrites := apiWrites(b, ctx, cfg) - writesBefore
	dups := 0
	for _, byUID := range sim.ObjectsByUID() {
		for _, count := range byUID {
			dups += count - 1
		}
	}
	needed := float64(2 * n)
	bound := needed / rate
	// The probes' Stripe calls are in the simulator's counts: per object means per load and probe object.
	objects := needed + float64(len(probes))
	extra := map[string]any{"n": n, "rate_ops_per_s": rate, "machine": "2 cores", "date": time.Now().Format("2006-01-02")}
	figure("convergence_seconds", elapsed.Seconds(), "s", extra)
	figure("convergence_bound_seconds", bound, "s", extra)
	figure("convergence_ratio", elapsed.Seconds()/bound, "ratio", extra)
	figure("apply_seconds", applied.Seconds(), "s", extra)
	figure("api_server_writes_per_object", kubeWrites/objects, "writes", extra)
	figure("stripe_calls_per_object", float64(calls)/objects, "calls", extra)
	figure("stripe_writes_per_object", float64(writes)/objects, "writes", extra)
	figure("calls_429_fraction", float64(limited)/float64(max(calls, 1)), "fraction", extra)
	figure("duplicates", float64(dups), "objects", extra)
	if len(probes) > 0 {
		slices.Sort(probes)
		pextra := map[string]any{"samples": len(probes), "machine": "2 cores", "date": extra["date"], "n": n}
		figure("time_to_ready_p50_ms", ms(probes[len(probes)/2]), "ms", pextra)
		figure("time_to_ready_p99_ms", ms(probes[(len(probes)*99)/100]), "ms", pextra)
	}
	if dups != 0 {
		b.Errorf("%d duplicate Stripe objects", dups)
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

// benchNS holds a benchmark's load; the operator-wide credentials Secret lives there too.
const benchNS = "bench"

// startStack starts the real API server and stripesim over HTTP (rate-limited at rate requests/s), creates namespace
// bench with the operator-wide credentials Secret, and stops all of it when the benchmark ends.
func startStack(b *testing.B, rate float64) (context.Context, *testenv.Env, *stripesim.Sim, string) {
	b.Helper()
	log.SetLogger(logDiscard())
	env, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Stop() })
	sim := stripesim.New(stripesim.Options{TestRate: rate, Seed: 1})
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	must(b, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}))
	must(b, env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS,
		Name: credentials.DefaultSecretName}, Data: map[string][]byte{credentials.APIKeyField: []byte("sk_test_bench")}}))
	return ctx, env, sim, srv.URL
}

// startRig is startStack with the operator running in-process with the given resync interval.
func startRig(b *testing.B, rate float64, resync time.Duration) (context.Context, client.Client, *stripesim.Sim,
	*rest.Config) {
	b.Helper()
	ctx, env, sim, url := startStack(b, rate)
	mgr, err := operator.New(ctx, env.Config, operator.Config{
		MetricsAddr: "0", ProbeAddr: "0", SkipNameValidation: true,
		CredentialsSecret:   types.NamespacedName{Namespace: benchNS, Name: credentials.DefaultSecretName},
		NamespaceSecretName: credentials.DefaultSecretName,
		Stripe:              stripe.Config{APIBase: url, TestRate: rate},
		Controllers: controllers.Options{ResyncInterval: resync, ClusterName: "bench",
			MaxConcurrentReconciles: 8},
	})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	return ctx, env.Client, sim, env.Config
}

// apiWrites reads the API server's count of write requests (create, update, patch, delete, apply) from its /metrics.
func apiWrites(b *testing.B, ctx context.Context, cfg *rest.Config) float64 {
	b.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		write := false
		for _, verb := range []string{"POST", "PUT", "PATCH", "DELETE", "APPLY"} {
			write = write || strings.Contains(line, `verb="`+verb+`"`)
		}
		if !write {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			b.Fatal(err)
		}
		total += v
	}
	return total
}

// createAll creates the objects from 16 goroutines, as a GitOps sync or a script applying many objects would.
func createAll(b *testing.B, ctx context.Context, c client.Client, objs <-chan client.Object) {
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range objs {
				if err := c.Create(ctx, o); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// delta returns the requests, the writes and the 429s between two stats snapshots.
func delta(before, after map[string]map[string]int64) (calls, writes, limited int64) {
	for pattern, byStatus := range after {
		for status, n := range byStatus {
			d := n - before[pattern][status]
			calls += d
			if strings.HasPrefix(pattern, "POST ") || strings.HasPrefix(pattern, "DELETE ") {
				writes += d
			}
			if status == "429" {
				limited += d
			}
		}
	}
	return calls, writes, limited
}

func waitAllReady(b *testing.B, ctx context.Context, c client.Client, ns string, want int, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ready := 0
		for _, l := range []client.ObjectList{&billingv1.CustomerList{}, &billingv1.ProductList{},
			&billingv1.PriceList{}, &billingv1.SubscriptionList{}} {
			if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			items, _ := meta.ExtractList(l)
			for _, o := range items {
				if meta.IsStatusConditionTrue(o.(billingv1.StripeObject).GetStripeStatus().Conditions,
					billingv1.ConditionReady) {
					ready++
				}
			}
		}
		if ready >= want {
			return
		}
		// Listing every object is itself load on the API server: poll large sets less often.
		time.Sleep(200*time.Millisecond + time.Duration(want)*200*time.Microsecond)
	}
	b.Fatalf("not all %d objects Ready within %v", want, timeout)
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
