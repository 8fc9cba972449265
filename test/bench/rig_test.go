package bench

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/operator"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// benchNS holds a benchmark's load; the operator-wide credentials Secret lives there too, and so do the
// StripeEvents the receiver stores.
const benchNS = "bench"

// benchAPIKey is the key of the operator-wide credentials Secret.
const benchAPIKey = "sk_test_bench"

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
	// Stripe's payment method rules, as in production: a default payment method is attached to the customer first.
	sim := stripesim.New(stripesim.Options{TestRate: rate, Seed: 1, StrictPaymentMethods: true})
	// Webhook deliveries stop with the benchmark (cleanups run last in, first out: after the server closes).
	b.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	must(b, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}))
	must(b, env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS,
		Name: credentials.DefaultSecretName}, Data: map[string][]byte{credentials.APIKeyField: []byte(benchAPIKey)}}))
	return ctx, env, sim, srv.URL
}

// rigConfig is how a benchmark runs the operator.
type rigConfig struct {
	// rate is stripesim's rate limit and the operator's budget, in requests/s.
	rate float64
	// resync is the operator's resync interval.
	resync time.Duration
	// webhooks runs the production setup: the receiver listens (--webhook-bind-address) and the operator registers
	// it with stripesim (--webhook-public-url), which stores the signing secret in the credentials Secret;
	// stripesim then delivers signed events, the receiver stores them as StripeEvents and the worker folds them.
	webhooks bool
}

// rig is a running stack: the API server, stripesim and the operator in-process.
type rig struct {
	ctx context.Context
	// c is the benchmark's own client (its writes are the user's, not the operator's).
	c   client.Client
	sim *stripesim.Sim
	// cfg reaches the API server, for its /metrics.
	cfg *rest.Config
	// cache is the operator's informer cache, read without copies to follow StripeEvents cheaply.
	cache    client.Reader
	writes   *writeCounter
	webhooks bool
	// storedBase is the receiver's stored count when the rig started: the count is process-wide, and several rigs
	// run in one process.
	storedBase float64
	// goneBase is the worker's count of compacted and redelivered StripeEvents (deleted) when the rig started.
	goneBase float64
	// start runs a new operator (with new caches and queues); stop stops it and waits until it has.
	start, stop func()
	// etcdURL reaches the control plane's etcd; simURL is stripesim's.
	etcdURL, simURL string
}

// startRig is startStack with the operator running in-process, its API-server writes counted by writer.
func startRig(b *testing.B, rc rigConfig) *rig {
	b.Helper()
	ctx, env, sim, url := startStack(b, rc.rate)
	r := &rig{ctx: ctx, c: env.Client, sim: sim, cfg: env.Config, writes: &writeCounter{n: map[string]int64{}},
		webhooks: rc.webhooks, etcdURL: env.EtcdURL(), simURL: url}
	opCfg := rest.CopyConfig(env.Config)
	opCfg.Wrap(r.writes.wrap)
	oc := operator.Config{
		MetricsAddr: "0", ProbeAddr: "0", SkipNameValidation: true,
		CredentialsSecret:   types.NamespacedName{Namespace: benchNS, Name: credentials.DefaultSecretName},
		NamespaceSecretName: credentials.DefaultSecretName,
		Stripe:              stripe.Config{APIBase: url, TestRate: rc.rate},
		Controllers: controllers.Options{ResyncInterval: rc.resync, ClusterName: "bench",
			MaxConcurrentReconciles: 8, Webhooks: rc.webhooks},
	}
	if rc.webhooks {
		addr := testenv.FreeAddr(b)
		oc.WebhookAddr, oc.WebhookPublicURL = addr, "http://"+addr+webhookreceiver.Path
	}
	r.start = func() {
		mctx, cancel := context.WithCancel(ctx)
		mgr, err := operator.New(mctx, opCfg, oc)
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		r.cache = mgr.GetCache()
		done := make(chan struct{})
		go func() { _ = mgr.Start(mctx); close(done) }()
		r.stop = func() { cancel(); <-done }
	}
	r.storedBase, _ = counterSum(storedEventsMetric, map[string]string{"result": "stored"})
	compacted, _ := counterSum(compactedMetric, nil)
	redelivered, _ := counterSum(redeliveriesMetric, nil)
	r.goneBase = compacted + redelivered
	r.start()
	if rc.webhooks {
		r.waitRegistered(b)
	}
	return r
}

// restart stops the operator and starts a new one, as a new pod would: empty caches and queues, fresh budgets.
func (r *rig) restart() {
	r.stop()
	r.start()
}

// waitRegistered waits until the operator has registered its receiver with stripesim and stored the signing secret.
func (r *rig) waitRegistered(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		s := &corev1.Secret{}
		must(b, r.c.Get(r.ctx, client.ObjectKey{Namespace: benchNS, Name: credentials.DefaultSecretName}, s))
		if strings.HasPrefix(string(s.Data[webhookreceiver.SecretsField]), "whsec_") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("the operator did not register its webhook endpoint within a minute")
}

// createCatalogue creates Product plan and Prices price-0 to price-<prices-1> and waits until they are Ready.
func (r *rig) createCatalogue(b *testing.B, prices int) {
	b.Helper()
	must(b, r.c.Create(r.ctx, &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: "plan"},
		Spec: billingv1.ProductSpec{Name: "Plan"}}))
	for i := range prices {
		must(b, r.c.Create(r.ctx, &billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS,
			Name: fmt.Sprintf("price-%d", i)}, Spec: billingv1.PriceSpec{
			ProductRef: &billingv1.LocalObjectReference{Name: "plan"}, Currency: "usd", UnitAmount: int64(1000 + i),
			Recurring: &billingv1.Recurring{Interval: billingv1.IntervalMonth}}}))
	}
	waitAllReady(b, r.ctx, r.c, benchNS, 1+prices, 2*time.Minute)
}

// testCard is Stripe's test card that always pays.
const testCard = "pm_card_visa"

// customersWithSubscriptions returns, in a closed channel, n Customers in namespace bench each with one
// Subscription on price-<i mod prices>. With card, every Customer has the test card that pays as its default
// payment method; without, every first invoice fails.
func customersWithSubscriptions(n, prices int, card bool) chan client.Object {
	objs := make(chan client.Object, 2*n)
	for i := range n {
		cus := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: fmt.Sprintf("cus-%d", i)},
			Spec: billingv1.CustomerSpec{Email: fmt.Sprintf("c%d@example.com", i)}}
		if card {
			cus.Spec.DefaultPaymentMethod = testCard
		}
		objs <- cus
		objs <- &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: fmt.Sprintf("sub-%d", i)},
			Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: cus.Name},
				Items: []billingv1.SubscriptionItem{{PriceRef: &billingv1.LocalObjectReference{
					Name: fmt.Sprintf("price-%d", i%prices)}, Quantity: ptr.To[int64](1)}}}}
	}
	close(objs)
	return objs
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

func waitAllReady(b *testing.B, ctx context.Context, c client.Client, ns string, want int, timeout time.Duration) {
	b.Helper()
	if wc, ok := c.(client.WithWatch); ok {
		if err := watchAllReady(ctx, wc, ns, want, timeout); err != nil {
			b.Fatal(err)
		}
		return
	}
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

// readyKinds are the kinds whose Ready objects waitAllReady counts.
var readyKinds = []func() client.ObjectList{
	func() client.ObjectList { return &billingv1.CustomerList{} },
	func() client.ObjectList { return &billingv1.ProductList{} },
	func() client.ObjectList { return &billingv1.PriceList{} },
	func() client.ObjectList { return &billingv1.SubscriptionList{} },
}

// readyChange is whether one object is Ready, or gone.
type readyChange struct {
	key   string
	ready bool
	gone  bool
}

// watchAllReady waits until want objects of ns are Ready, following them with one watch per kind (as kubectl wait
// does) rather than listing them again and again: a list of every object, each poll, is load on the API server
// that the operator, measured meanwhile, shares the machine with.
func watchAllReady(ctx context.Context, c client.WithWatch, ns string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	changes := make(chan readyChange, 1024)
	errs := make(chan error, len(readyKinds))
	for i, newList := range readyKinds {
		go func() { errs <- followReady(ctx, c, ns, strconv.Itoa(i), newList, changes) }()
	}
	ready := map[string]bool{}
	count := func() int {
		n := 0
		for _, r := range ready {
			if r {
				n++
			}
		}
		return n
	}
	for {
		select {
		case ch := <-changes:
			if ch.gone {
				delete(ready, ch.key)
			} else {
				ready[ch.key] = ch.ready
			}
			if ready[ch.key] && count() >= want {
				return nil
			}
		case err := <-errs:
			if ctx.Err() == nil {
				return err
			}
			return fmt.Errorf("not all %d objects Ready within %v (%d are)", want, timeout, count())
		case <-ctx.Done():
			return fmt.Errorf("not all %d objects Ready within %v (%d are)", want, timeout, count())
		}
	}
}

// followReady lists one kind, then watches it from the list's resourceVersion, sending each object's readiness;
// a watch the API server ends is started again from a new list.
func followReady(ctx context.Context, c client.WithWatch, ns, kind string, newList func() client.ObjectList,
	changes chan<- readyChange) error {
	send := func(o k8sruntime.Object, gone bool) {
		so, ok := o.(billingv1.StripeObject)
		if !ok {
			return
		}
		ch := readyChange{key: kind + "/" + so.GetName(), gone: gone,
			ready: meta.IsStatusConditionTrue(so.GetStripeStatus().Conditions, billingv1.ConditionReady)}
		select {
		case changes <- ch:
		case <-ctx.Done():
		}
	}
	for ctx.Err() == nil {
		l := newList()
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			return err // the wait's own end, or a failure
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return err
		}
		for _, o := range items {
			send(o, false)
		}
		w, err := c.Watch(ctx, newList(), client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.GetResourceVersion()}})
		if err != nil {
			continue // listed again
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified:
				send(ev.Object, false)
			case watch.Deleted:
				send(ev.Object, true)
			}
		}
		w.Stop()
	}
	return nil
}

// waitSettled waits until stripesim has nothing left to deliver, every event the receiver stored is in the
// operator's cache, and every stored StripeEvent is settled (Processed, Failed or Unroutable).
func (r *rig) waitSettled(b *testing.B, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	pending := 0
	for time.Now().Before(deadline) {
		if r.sim.PendingDeliveries() == 0 && r.sim.InFlightDeliveries() == 0 {
			// The receiver answers once the API server has the event; the cache may be a moment behind.
			// Processed events are recorded in the ledger and deleted (compacted), redeliveries deleted.
			stored, _ := counterSum(storedEventsMetric, map[string]string{"result": "stored"})
			compacted, _ := counterSum(compactedMetric, nil)
			redelivered, _ := counterSum(redeliveriesMetric, nil)
			events, unsettled := r.storedEvents(b)
			gone := compacted + redelivered - r.goneBase
			if pending = unsettled; unsettled == 0 && float64(events)+gone >= stored-r.storedBase {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("webhook events not settled within %v: %d stored events pending, %d deliveries queued, %d in flight",
		timeout, pending, r.sim.PendingDeliveries(), r.sim.InFlightDeliveries())
}

// storedEventsMetric is the receiver's count of events by type and result; result "stored" counts creates.
const storedEventsMetric = "stripe_operator_webhook_events_total"

// storedEvents counts the StripeEvents in namespace bench, and those not yet settled, from the operator's cache.
func (r *rig) storedEvents(b *testing.B) (events, unsettled int) {
	b.Helper()
	l := &billingv1.StripeEventList{}
	must(b, r.cache.List(r.ctx, l, client.InNamespace(benchNS), client.UnsafeDisableDeepCopy))
	for i := range l.Items {
		switch l.Items[i].Status.Phase {
		case billingv1.EventProcessed, billingv1.EventFailed, billingv1.EventUnroutable:
		default:
			unsettled++
		}
	}
	return len(l.Items), unsettled
}

// snapshot is what the counters said at one moment.
type snapshot struct {
	// stripe is stripesim's request count by endpoint pattern and status.
	stripe map[string]map[string]int64
	// apiWrites is the API server's write requests by resource and verb (every writer: the benchmark too).
	apiWrites map[string]float64
	// operatorWrites is the operator's writes by writer and resource.
	operatorWrites map[string]int64
	// recovered is the operator's count of creates recovered by listing; recoveredSeen is false while the registry
	// has no series of it.
	recovered     float64
	recoveredSeen bool
	// events is the number of events the receiver stored (StripeEvents created), in webhook rigs.
	events int
}

// recoveredMetric counts the creates the operator recovered by listing Stripe (after a create whose outcome it did
// not learn).
const recoveredMetric = "stripe_operator_creates_recovered_total"

func (r *rig) snapshot(b *testing.B) snapshot {
	b.Helper()
	s := snapshot{stripe: r.sim.Stats(), apiWrites: apiWriteCounts(b, r.ctx, r.cfg), operatorWrites: r.writes.counts()}
	s.recovered, s.recoveredSeen = counterSum(recoveredMetric, nil)
	if r.webhooks {
		// The receiver's count: processed events are compacted (deleted), so counting StripeEvents would miss them.
		stored, _ := counterSum(storedEventsMetric, map[string]string{"result": "stored"})
		s.events = int(stored)
	}
	return s
}

// stripeCounts are stripesim's requests between two snapshots (every attempt, 429s included).
type stripeCounts struct {
	calls, writes, limited int64
	// reads are GETs of one object (a pattern ending in {id}); lists are GETs of a collection (list and search).
	reads, lists int64
	// readsByEndpoint and listsByEndpoint break them down by endpoint pattern.
	readsByEndpoint, listsByEndpoint map[string]int64
}

// stripeDelta classifies the requests between two stats snapshots by the endpoint patterns stripesim counts them
// under ("GET /v1/customers/{id}" is a read, "GET /v1/customers" and "GET /v1/customers/search" are lists).
func stripeDelta(before, after map[string]map[string]int64) stripeCounts {
	out := stripeCounts{readsByEndpoint: map[string]int64{}, listsByEndpoint: map[string]int64{}}
	for pattern, byStatus := range after {
		method, path, _ := strings.Cut(pattern, " ")
		for status, n := range byStatus {
			d := n - before[pattern][status]
			if d == 0 {
				continue
			}
			out.calls += d
			switch {
			case method == http.MethodPost || method == http.MethodDelete:
				out.writes += d
			case method == http.MethodGet && strings.HasSuffix(path, "/{id}"):
				out.reads += d
				out.readsByEndpoint[pattern] += d
			case method == http.MethodGet:
				out.lists += d
				out.listsByEndpoint[pattern] += d
			}
			if status == "429" {
				out.limited += d
			}
		}
	}
	return out
}

// costs is what a run cost between two snapshots.
type costs struct {
	stripe stripeCounts
	// apiWrites is every write the API server served; apiByResource breaks it down.
	apiWrites     float64
	apiByResource map[string]float64
	// operatorWrites breaks the operator's own writes down by writer and resource; eventWrites are those that
	// webhook events cost: storing them (StripeEvent creates) and all the StripeEvent worker writes.
	operatorWrites map[string]int64
	eventWrites    int64
	storedEvents   int
	recovered      float64
	recoveredSeen  bool
	duplicates     int
	webhooks       bool
}

// costsSince takes a snapshot now and returns what the run cost since before.
func (r *rig) costsSince(b *testing.B, before snapshot) costs {
	b.Helper()
	after := r.snapshot(b)
	c := costs{stripe: stripeDelta(before.stripe, after.stripe), apiByResource: map[string]float64{},
		operatorWrites: map[string]int64{}, storedEvents: after.events - before.events,
		recovered: after.recovered - before.recovered, recoveredSeen: after.recoveredSeen, webhooks: r.webhooks}
	for k, v := range after.apiWrites {
		if d := v - before.apiWrites[k]; d != 0 {
			c.apiWrites += d
			c.apiByResource[k] = d
		}
	}
	for k, v := range after.operatorWrites {
		if d := v - before.operatorWrites[k]; d != 0 {
			c.operatorWrites[k] = d
			writer, resource, _ := strings.Cut(k, " ")
			if writer == eventWorker || strings.HasPrefix(resource, "stripeevents") {
				c.eventWrites += d
			}
		}
	}
	for _, byUID := range r.sim.ObjectsByUID() {
		for _, count := range byUID {
			c.duplicates += count - 1
		}
	}
	return c
}

// report prints the per-object figures, their names prefixed. objects is what the costs are divided by.
func (c costs) report(prefix string, objects float64, extra map[string]any) {
	with := func(more map[string]any) map[string]any {
		m := maps.Clone(extra)
		maps.Copy(m, more)
		return m
	}
	s := c.stripe
	figure(prefix+"stripe_calls_per_object", float64(s.calls)/objects, "calls", with(map[string]any{"calls": s.calls}))
	figure(prefix+"stripe_reads_per_object", float64(s.reads)/objects, "calls",
		with(map[string]any{"reads": s.reads, "by_endpoint": s.readsByEndpoint}))
	figure(prefix+"stripe_lists_per_object", float64(s.lists)/objects, "calls",
		with(map[string]any{"lists": s.lists, "by_endpoint": s.listsByEndpoint}))
	figure(prefix+"stripe_writes_per_object", float64(s.writes)/objects, "writes", extra)
	figure(prefix+"calls_429_fraction", float64(s.limited)/float64(max(s.calls, 1)), "fraction", extra)
	figure(prefix+"api_server_writes_per_object", c.apiWrites/objects, "writes",
		with(map[string]any{"writes": c.apiWrites, "by_resource": c.apiByResource, "operator_by_writer": c.operatorWrites}))
	if c.webhooks {
		figure(prefix+"stored_events_per_object", float64(c.storedEvents)/objects, "events",
			with(map[string]any{"stored_events": c.storedEvents}))
		figure(prefix+"api_server_writes_per_stored_event", float64(c.eventWrites)/float64(max(c.storedEvents, 1)),
			"writes", with(map[string]any{"event_writes": c.eventWrites, "stored_events": c.storedEvents}))
	}
	rextra := extra
	if !c.recoveredSeen {
		rextra = with(map[string]any{"note": recoveredMetric + " has no series in the registry (not registered, or " +
			"a vector never incremented): counted as 0"})
	}
	figure(prefix+"creates_recovered", c.recovered, "creates", rextra)
	figure(prefix+"duplicates", float64(c.duplicates), "objects", extra)
}

// convergence prints how long the load took against the bound: the Stripe creates it needs at the rate limit.
func convergence(prefix string, applied, ready time.Duration, bound float64, extra map[string]any) {
	figure(prefix+"convergence_seconds", ready.Seconds(), "s", extra)
	figure(prefix+"convergence_bound_seconds", bound, "s", extra)
	figure(prefix+"convergence_ratio", ready.Seconds()/bound, "ratio", extra)
	figure(prefix+"apply_seconds", applied.Seconds(), "s", extra)
}

// rawWriteRate measures what the API server of this run sustains: n ConfigMap creates by 8 writers, in writes per
// second. The API-server bound of a convergence is its writes divided by this rate (a create is the cheapest write,
// so the bound is optimistic).
func rawWriteRate(b *testing.B, ctx context.Context, c client.Client, n int) float64 {
	b.Helper()
	ns := fmt.Sprintf("raw-writes-%d", time.Now().UnixNano())
	must(b, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("w-%d", i)},
					Data: map[string]string{"k": strconv.Itoa(i)}}
				if err := c.Create(ctx, cm); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// apiBound reports the API-server bound of a run and the convergence against it.
func apiBound(prefix string, ready time.Duration, writes, rate float64, extra map[string]any) {
	bound := writes / rate
	m := maps.Clone(extra)
	m["raw_writes_per_second"] = rate
	figure(prefix+"api_server_bound_seconds", bound, "s", m)
	figure(prefix+"convergence_ratio_to_api_server_bound", ready.Seconds()/bound, "ratio", m)
}

// runExtra is the context every figure of a run carries.
func runExtra(n int, rate float64) map[string]any {
	return map[string]any{"n": n, "rate_ops_per_s": rate, "machine": fmt.Sprintf("%d cores", runtime.NumCPU()),
		"date": time.Now().Format("2006-01-02")}
}

// apiWriteCounts reads the API server's count of write requests (create, update, patch, delete, apply) from its
// /metrics, by resource[/subresource] and verb.
func apiWriteCounts(b *testing.B, ctx context.Context, cfg *rest.Config) map[string]float64 {
	b.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, smp := range parseSamples(string(data)) {
		if smp.name != "apiserver_request_total" {
			continue
		}
		switch smp.labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		default:
			continue
		}
		resource := smp.labels["resource"]
		if smp.labels["subresource"] != "" {
			resource += "/" + smp.labels["subresource"]
		}
		out[resource+" "+smp.labels["verb"]] += smp.value
	}
	return out
}

// sample is one series of a Prometheus text page.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseSamples reads the series of a Prometheus text page (label values must not hold `",`).
func parseSamples(page string) []sample {
	var out []sample
	for _, line := range strings.Split(page, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(line[:i], "{")
		l := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), `",`) {
			if k, v, ok := strings.Cut(kv, `="`); ok {
				l[k] = strings.TrimSuffix(v, `"`)
			}
		}
		out = append(out, sample{name: name, labels: l, value: v})
	}
	return out
}

// sumSamples adds up the series of name whose labels include the given ones.
func sumSamples(samples []sample, name string, labels map[string]string) float64 {
	sum := 0.0
	for _, smp := range samples {
		if smp.name != name {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && smp.labels[k] == v
		}
		if match {
			sum += smp.value
		}
	}
	return sum
}

// counterSum adds up the series of a metric in controller-runtime's registry whose labels include the given
// ones; ok is false when the registry has no series of it.
func counterSum(name string, labels map[string]string) (sum float64, ok bool) {
	return testenv.SeriesSum(metrics.Registry, name, labels)
}

// eventWorker is the writer name of the StripeEvent worker (the kind its controller is for).
const eventWorker = "StripeEvent"

// writeCounter counts the operator's API-server writes by writer and resource ("StripeEvent customers/status").
// The writer is the kind of the controller whose reconcile made the request, read from the logger
// controller-runtime puts in the reconcile's context (see writerOf); requests outside a reconcile (the receiver,
// the event recorder) are "other".
type writeCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			key := writerOf(req.Context()) + " " + resourceOf(req.URL.Path)
			w.mu.Lock()
			w.n[key]++
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (w *writeCounter) counts() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.n)
}

// resourceOf reads resource[/subresource] from an API path: /api/v1/namespaces/ns/events,
// /apis/group/version/namespaces/ns/customers/name/status, /api/v1/namespaces.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	i := 3 // after apis/group/version
	if parts[0] == "api" {
		i = 2
	}
	if len(parts) > i+2 && parts[i] == "namespaces" {
		i += 2
	}
	switch tail := parts[min(i, len(parts)):]; len(tail) {
	case 0:
		return path
	case 1, 2:
		return tail[0]
	default:
		return tail[0] + "/" + tail[2]
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
