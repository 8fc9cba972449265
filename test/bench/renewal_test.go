package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// renewalN is the number of subscriptions renewing at once: 10,000, 1,000 with BENCH_QUICK, or RENEWAL_N.
func renewalN() int {
	if n, err := strconv.Atoi(os.Getenv("RENEWAL_N")); err == nil && n > 0 {
		return n
	}
	if os.Getenv("BENCH_QUICK") != "" {
		return 1000
	}
	return 10000
}

// renewalSettleTime is how long the operator stays idle after the renewal day before its memory is read again (and a
// restarted process after it synced): 3 minutes, 20 s with BENCH_QUICK.
func renewalSettleTime() time.Duration {
	if os.Getenv("BENCH_QUICK") != "" {
		return 20 * time.Second
	}
	return 3 * time.Minute
}

// The delivery behaviour of the renewal day: Stripe sends a burst over a bounded number of connections, out of
// order, now and then twice, and retries what fails.
var renewalDelivery = stripesim.WebhookOptions{Concurrency: 32, ShuffleWindow: 5 * time.Second,
	DuplicateFraction: 0.02, Timeout: 10 * time.Second}

// BenchmarkRenewalDay (renewal_day): N Subscriptions, created together so on one billing anchor, renew at once
// when stripesim moves the account's time past the anchor; each renewal sends Stripe-sized
// customer.subscription.updated and invoice.paid events (about 2.5 and 3.7 KB; Stripe also sends
// invoice.payment_succeeded, which the operator does not register for) through the receiver. The operator runs as its own process (receiver and worker, as deployed), so its memory is
// its own. It reports how fast events are stored and processed, the receiver's acknowledgement latency, the time to
// an empty backlog, and what the burst costs and keeps in etcd: its growth, and, after a compaction, the bytes kept
// per processed event, with the extrapolation to 100,000 renewals. The operator's memory is read on the eve, after
// the day, after idle minutes, and then against the same objects in two new processes: a restarted operator, and
// test/bench/cachefloor, which holds only the operator's informer cache of them.
func BenchmarkRenewalDay(b *testing.B) {
	n, renewalSettle := renewalN(), renewalSettleTime()
	const rate = 1000
	ctx, env, sim, url := startStack(b, rate)
	r := &rig{ctx: ctx, c: env.Client, sim: sim, cfg: env.Config, webhooks: true, etcdURL: env.EtcdURL(),
		simURL: url}
	hook, metricsAddr := testenv.FreeAddr(b), testenv.FreeAddr(b)
	pprofAddr := testenv.FreeAddr(b)
	opArgs := []string{"--stripe-test-rate", strconv.Itoa(rate), "--max-concurrent-reconciles", "8",
		"--webhook-bind-address", hook, "--metrics-bind-address", metricsAddr, "--pprof-bind-address", pprofAddr}
	op := startOperatorProcess(b, env, url, opArgs...)
	metricsURL := "http://" + metricsAddr + "/metrics"
	scrape := func() []sample { return scrapeSamples(b, metricsURL) }
	r.createCatalogue(b, 3)
	createAll(b, ctx, r.c, customersWithSubscriptions(n, 3, true))
	waitAllReady(b, ctx, r.c, benchNS, 4+2*n, 60*time.Minute)
	// The account as it runs on the eve of the renewal day: the endpoint is registered after the setup, so the
	// creations' events (not measured) do not flow first.
	r.registerEndpoint(b, "http://"+hook+webhookreceiver.Path)
	sim.SetWebhookOptions(renewalDelivery)
	r.waitCompacted(b, 30*time.Minute)
	// The operator with N Subscriptions and their Customers in sync, before the renewal day.
	eve, err := processStatus(op.Process.Pid)
	must(b, err)
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		saveHeapProfile(b, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", path+".before")
	}
	et := etcdClient{url: r.etcdURL}
	et.compact(b)
	before := et.sizes(b)
	keptBefore, ledgerBefore := et.prefixBytes(b, "/registry/"), et.prefixBytes(b, ledgerPrefix)
	counts := func() (stored, compacted, redelivered float64) {
		page := scrape()
		return sumSamples(page, storedEventsMetric, map[string]string{"result": "stored"}),
			sumSamples(page, compactedMetric, nil), sumSamples(page, redeliveriesMetric, nil)
	}
	storedBase, compactedBase, redeliveredBase := counts()

	start := time.Now()
	peaks := samplePeaks(et, func() []sample {
		page, _ := scrapePage(metricsURL) // a missed sample only misses a peak
		return parseSamples(page)
	})
	// Every subscription started within the setup, so its first period ends within a month and a day of now.
	moved, err := sim.AdvanceAccountTime("", time.Now().Unix()+32*86400)
	if err != nil {
		b.Fatal(err)
	}
	advanced := time.Since(start)
	idle, empty := r.waitDrained(b, start, 60*time.Minute)
	time.Sleep(time.Second) // the last deletions are counted after they are made
	stored, compacted, redelivered := counts()
	stored, compacted, redelivered = stored-storedBase, compacted-compactedBase, redelivered-redeliveredBase
	peak := peaks()
	rss, rssPeak, err := processMemory(op.Process.Pid)
	must(b, err)
	goHeap := scrape()
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		saveHeapProfile(b, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", path)
	}
	grown := et.sizes(b)
	et.compact(b)
	after := et.sizes(b)
	keptAfter, ledgerAfter := et.prefixBytes(b, "/registry/"), et.prefixBytes(b, ledgerPrefix)

	extra := runExtra(n, rate)
	extra["delivery"] = map[string]any{"concurrency": renewalDelivery.Concurrency,
		"shuffle_window_s": renewalDelivery.ShuffleWindow.Seconds(), "duplicate_fraction": renewalDelivery.DuplicateFraction,
		"timeout_s": renewalDelivery.Timeout.Seconds()}
	extra["renewals"], extra["events_emitted"] = moved.Steps, moved.Events
	with := func(more map[string]any) map[string]any {
		m := maps.Clone(extra)
		maps.Copy(m, more)
		return m
	}
	figure("renewal_day_operator_rss_before_mib", eve["VmRSS"], "MiB", with(map[string]any{
		"rss_anon_mib": eve["RssAnon"], "rss_file_mib": eve["RssFile"],
		"note": "the operator's resident memory with the N Subscriptions and their Customers in sync, before the burst"}))
	figure("renewal_day_stored_events_per_second", stored/idle.Seconds(), "events/s",
		with(map[string]any{"stored_events": stored, "delivery_seconds": idle.Seconds(),
			"simulator_seconds": advanced.Seconds()}))
	figure("renewal_day_processed_events_per_second", compacted/empty.Seconds(), "events/s",
		with(map[string]any{"processed_events": compacted}))
	figure("renewal_day_seconds_to_empty_backlog", empty.Seconds(), "s",
		with(map[string]any{"peak_pending_gauge": peak.pending, "peak_oldest_pending_s": peak.oldest,
			"redeliveries_recognised": redelivered}))
	acks := r.ackLatencies(start)
	figure("renewal_day_ack_p50_ms", percentileMS(acks.ok, 0.50), "ms", with(map[string]any{"attempts": len(acks.ok)}))
	figure("renewal_day_ack_p99_ms", percentileMS(acks.ok, 0.99), "ms",
		with(map[string]any{"attempts": len(acks.ok), "failed_attempts": acks.failed, "failures": acks.reasons}))
	figure("renewal_day_etcd_growth_bytes", float64(max(grown.total, peak.total)-before.total), "bytes",
		with(map[string]any{"db_before": before.total, "db_peak": max(grown.total, peak.total),
			"in_use_peak": max(grown.inUse, peak.inUse),
			"note": "etcd_mvcc_db_total_size_in_bytes (the database file) at its peak during the burst, minus " +
				"before (compacted and defragmented): the revisions the burst wrote that the API server had not " +
				"compacted yet (it compacts every 5 minutes)"}))
	perEvent := float64(keptAfter-keptBefore) / max(compacted, 1)
	figure("renewal_day_etcd_bytes_per_processed_event_kept", perEvent, "bytes", with(map[string]any{
		"bytes_before": keptBefore, "bytes_after": keptAfter, "target": 500,
		"method": "the keys and values etcd holds under /registry/ (every object of the API server), read after " +
			"the burst minus before, divided by the events processed",
		"ledger_bytes_per_event": float64(ledgerAfter-ledgerBefore) / max(compacted, 1),
		"db_before":              before.total, "db_after_compaction": after.total}))
	eventsPerRenewal := compacted / float64(max(moved.Steps, 1))
	figure("renewal_day_etcd_mb_kept_for_100k_renewals", perEvent*eventsPerRenewal*100000/1e6, "MB",
		with(map[string]any{"events_per_renewal": eventsPerRenewal, "target": 100}))
	mib := func(page []sample, name string) float64 { return sumSamples(page, name, nil) / (1 << 20) }
	figure("renewal_day_operator_rss_mib", rss, "MiB", with(map[string]any{"peak_mib": rssPeak,
		"go_heap_inuse_mib":    mib(goHeap, "go_memstats_heap_inuse_bytes"),
		"go_heap_idle_mib":     mib(goHeap, "go_memstats_heap_idle_bytes"),
		"go_heap_released_mib": mib(goHeap, "go_memstats_heap_released_bytes"),
		"note": "the operator process (receiver and worker) after the backlog emptied, and its peak; the Go heap in " +
			"use, and idle (of which released to the system), from its metrics"}))

	// What the operator holds once it has been idle a while: the runtime's periodic collection (every 2 minutes)
	// and its scavenger return what the burst's garbage took.
	time.Sleep(renewalSettle)
	settled, _, err := processMemory(op.Process.Pid)
	must(b, err)
	idleHeap := scrape()
	figure("renewal_day_operator_rss_settled_mib", settled, "MiB", with(map[string]any{
		"settle_s": renewalSettle.Seconds(), "go_heap_inuse_mib": mib(idleHeap, "go_memstats_heap_inuse_bytes"),
		"go_heap_released_mib": mib(idleHeap, "go_memstats_heap_released_bytes"),
		"note":                 "the operator's resident memory after the backlog emptied and it stayed idle settle_s"}))

	// The same objects (and the ledger of the events processed) held by an operator that restarted with them, so
	// with no burst behind it, and by a process that holds the operator's cache of them and nothing else: the
	// floor of a controller-runtime process keeping these objects.
	stopProcess(op)
	floor, floorLog := startProcess(b, "./test/bench/cachefloor", "--kubeconfig", env.Kubeconfig,
		"--settle", renewalSettle.String())
	var floorHeap map[string]float64
	must(b, json.Unmarshal([]byte(waitJSONLine(b, floor, floorLog, renewalSettle+10*time.Minute)), &floorHeap))
	floorMem, err := processStatus(floor.Process.Pid)
	must(b, err)
	stopProcess(floor)
	op = startOperatorProcess(b, env, url, opArgs...)
	waitReconcilesSettled(b, metricsURL, 30*time.Minute)
	time.Sleep(renewalSettle)
	restarted, err := processStatus(op.Process.Pid)
	must(b, err)
	restartedHeap := scrape()
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		saveHeapProfile(b, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", path+".restarted")
	}
	figure("renewal_day_operator_rss_restarted_mib", restarted["VmRSS"], "MiB", with(map[string]any{
		"rss_anon_mib": restarted["RssAnon"], "rss_file_mib": restarted["RssFile"], "settle_s": renewalSettle.Seconds(),
		"go_heap_inuse_mib": mib(restartedHeap, "go_memstats_heap_inuse_bytes"),
		"go_next_gc_mib":    mib(restartedHeap, "go_memstats_next_gc_bytes"),
		"note": "a new operator process started after the renewal day, with the N Subscriptions, their Customers and " +
			"the ledger of the events processed, once its reconciles stopped and it stayed idle settle_s"}))
	figure("renewal_day_cache_floor_rss_mib", floorMem["VmRSS"], "MiB", with(map[string]any{
		"rss_anon_mib": floorMem["RssAnon"], "rss_file_mib": floorMem["RssFile"], "settle_s": renewalSettle.Seconds(),
		"go_heap_alloc_mib": floorHeap["heap_alloc"] / (1 << 20), "go_heap_inuse_mib": floorHeap["heap_inuse"] / (1 << 20),
		"go_next_gc_mib": floorHeap["next_gc"] / (1 << 20),
		"note": "test/bench/cachefloor: the operator's informer cache of the same objects (same scheme and " +
			"transform) and nothing else, idle settle_s after it synced"}))

	if wrong := r.checkRenewed(b); wrong != "" {
		b.Errorf("status after the renewal day: %s", wrong)
	}
	// Every stored event was processed and compacted, or was a redelivery of one (recognised by the ledger).
	if stored < float64(2*n) || compacted+redelivered != stored {
		b.Errorf("%v events stored, %v processed and %v redeliveries recognised, want at least %d stored and each "+
			"of them one or the other", stored, compacted, redelivered, 2*n)
	}
}

// stripeClient is a client of stripesim with the bench's key, for the benchmark's own checks.
func (r *rig) stripeClient(b *testing.B) *stripe.Client {
	b.Helper()
	k, err := stripe.ParseKey(benchAPIKey)
	must(b, err)
	return stripe.NewFactory(stripe.Config{APIBase: r.simURL, TestRate: 1000}).Client(k, "bench")
}

// registerEndpoint registers a webhook endpoint for the event types the operator handles with stripesim, as
// --webhook-public-url does, stores its signing secret in the credentials Secret and waits for the receiver to take
// it (a delivery it accepts).
func (r *rig) registerEndpoint(b *testing.B, url string) {
	b.Helper()
	ep, err := r.stripeClient(b).API.WebhookEndpoints.New(&stripego.WebhookEndpointParams{URL: stripego.String(url),
		EnabledEvents: stripego.StringSlice(webhookreceiver.HandledTypes),
		APIVersion:    stripego.String(stripego.APIVersion)})
	must(b, err)
	s := &corev1.Secret{}
	must(b, r.c.Get(r.ctx, client.ObjectKey{Namespace: benchNS, Name: credentials.DefaultSecretName}, s))
	s.Data[webhookreceiver.SecretsField] = []byte(ep.Secret)
	must(b, r.c.Update(r.ctx, s))
	r.waitRegistered(b)
	time.Sleep(2 * time.Second) // the operator's cache of the Secret
}

// ledgerPrefix is where etcd holds the StripeEventLedgers.
const ledgerPrefix = "/registry/billing.stripe-operator.io/stripeeventledgers/"

// scrapeSamples reads a /metrics page.
func scrapeSamples(b *testing.B, url string) []sample {
	b.Helper()
	page, err := scrapePage(url)
	must(b, err)
	return parseSamples(page)
}

func scrapePage(url string) (string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	page, err := io.ReadAll(resp.Body)
	return string(page), err
}

// compactedMetric counts the processed StripeEvents recorded in the ledger and deleted; redeliveriesMetric the
// StripeEvents the ledger recognised as redeliveries.
const (
	compactedMetric    = "stripe_operator_stripeevents_compacted_total"
	redeliveriesMetric = "stripe_operator_stripeevent_redeliveries_total"
)

// peaks are the highest values seen while the burst ran.
type peaks struct {
	total, inUse    int64
	pending, oldest float64
}

// samplePeaks samples etcd's sizes and the operator's backlog gauges (from scrape) every 500 ms until the
// returned function is called, which returns the peaks.
func samplePeaks(et etcdClient, scrape func() []sample) func() peaks {
	var p peaks
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if s, err := et.read(); err == nil {
				p.total, p.inUse = max(p.total, s.total), max(p.inUse, s.inUse)
			}
			page := scrape()
			p.pending = max(p.pending, sumSamples(page, "stripe_operator_stripeevents", map[string]string{"phase": "Pending"}))
			p.oldest = max(p.oldest, sumSamples(page, "stripe_operator_stripeevents_oldest_pending_seconds", nil))
		}
	}()
	return func() peaks {
		close(stop)
		<-done
		return p
	}
}

// waitCompacted waits until stripesim has delivered everything and no StripeEvent is left (all processed and
// compacted).
func (r *rig) waitCompacted(b *testing.B, timeout time.Duration) {
	b.Helper()
	r.waitDrained(b, time.Now(), timeout)
}

// waitDrained waits until stripesim has nothing left to deliver (idle) and no StripeEvent is left (empty), and
// returns both times since start.
func (r *rig) waitDrained(b *testing.B, start time.Time, timeout time.Duration) (idle, empty time.Duration) {
	b.Helper()
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) {
		delivering := r.sim.PendingDeliveries() > 0 || r.sim.InFlightDeliveries() > 0
		if !delivering && idle == 0 {
			idle = time.Since(start)
		}
		if !delivering {
			l := &billingv1.StripeEventList{}
			must(b, r.c.List(r.ctx, l, client.InNamespace(benchNS), client.Limit(1)))
			if len(l.Items) == 0 {
				return idle, time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("the backlog did not empty within %v: %d deliveries queued, %d in flight", timeout,
		r.sim.PendingDeliveries(), r.sim.InFlightDeliveries())
	return 0, 0
}

// acks are the delivery attempts since a moment: the durations of the acknowledged ones, and the failures.
type acks struct {
	ok      []time.Duration
	failed  int
	reasons map[string]int
}

func (r *rig) ackLatencies(since time.Time) acks {
	out := acks{reasons: map[string]int{}}
	for _, d := range r.sim.Deliveries() {
		if d.At.Before(since) {
			continue
		}
		if d.Error == "" && d.Status >= 200 && d.Status < 300 {
			out.ok = append(out.ok, d.Duration)
			continue
		}
		out.failed++
		if d.Error != "" {
			out.reasons["error"]++
		} else {
			out.reasons[strconv.Itoa(d.Status)]++
		}
	}
	return out
}

func percentileMS(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000
}

// checkRenewed compares every Subscription's status with stripesim's subscription: the new period, active, the
// renewal invoice paid. It returns what differs (the first few), or "".
func (r *rig) checkRenewed(b *testing.B) string {
	b.Helper()
	sc := r.stripeClient(b)
	inStripe := map[string]struct {
		start  int64
		status string
	}{}
	it := sc.API.Subscriptions.List(nil)
	for it.Next() {
		s := it.Subscription()
		inStripe[s.ID] = struct {
			start  int64
			status string
		}{s.CurrentPeriodStart, string(s.Status)}
	}
	must(b, it.Err())
	l := &billingv1.SubscriptionList{}
	must(b, r.c.List(r.ctx, l, client.InNamespace(benchNS)))
	var wrong []string
	for _, s := range l.Items {
		want := inStripe[s.Status.ID]
		got := int64(0)
		if s.Status.CurrentPeriodStart != nil {
			got = s.Status.CurrentPeriodStart.Unix()
		}
		paid := s.Status.LatestInvoice != nil && s.Status.LatestInvoice.Status == "paid"
		if got != want.start || s.Status.StripeState != want.status || !paid {
			wrong = append(wrong, fmt.Sprintf("%s: period start %d (Stripe %d), %s (Stripe %s), invoice %+v",
				s.Name, got, want.start, s.Status.StripeState, want.status, s.Status.LatestInvoice))
		}
	}
	if len(wrong) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d differ from Stripe, the first: %s", len(wrong), len(l.Items),
		strings.Join(wrong[:min(3, len(wrong))], "; "))
}

// etcdClient reads the control plane's etcd over its JSON gateway and /metrics.
type etcdClient struct{ url string }

// etcdSizes are etcd's database size and the part of it in use.
type etcdSizes struct{ total, inUse int64 }

func (e etcdClient) post(b *testing.B, path string, body, out any) {
	b.Helper()
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+path, bytes.NewReader(data))
	must(b, err)
	resp, err := http.DefaultClient.Do(req)
	must(b, err)
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("etcd %s: %d %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		must(b, json.Unmarshal(raw, out))
	}
}

// compact compacts etcd's history up to the latest revision, physically, so that the space of every overwritten or
// deleted revision is free, then defragments it, so that its database holds only what is kept.
func (e etcdClient) compact(b *testing.B) {
	b.Helper()
	var status struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	e.post(b, "/v3/maintenance/status", map[string]any{}, &status)
	e.post(b, "/v3/kv/compaction", map[string]any{"revision": status.Header.Revision, "physical": true}, nil)
	e.post(b, "/v3/maintenance/defragment", map[string]any{}, nil)
}

func (e etcdClient) sizes(b *testing.B) etcdSizes {
	b.Helper()
	s, err := e.read()
	must(b, err)
	return s
}

// read reads etcd's sizes from its /metrics.
func (e etcdClient) read() (etcdSizes, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.url+"/metrics", nil)
	if err != nil {
		return etcdSizes{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return etcdSizes{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var s etcdSizes
	for _, line := range strings.Split(string(raw), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "etcd_mvcc_db_total_size_in_bytes":
			s.total = int64(v)
		case "etcd_mvcc_db_total_size_in_use_in_bytes":
			s.inUse = int64(v)
		}
	}
	if s.total == 0 {
		return s, fmt.Errorf("etcd's /metrics has no etcd_mvcc_db_total_size_in_bytes")
	}
	return s, nil
}

// prefixBytes sums the lengths of the keys and values etcd holds under prefix, reading 500 keys at a time.
func (e etcdClient) prefixBytes(b *testing.B, prefix string) int64 {
	b.Helper()
	end := []byte(prefix)
	end[len(end)-1]++
	enc := base64.StdEncoding.EncodeToString
	var n int64
	for from := []byte(prefix); ; {
		var out struct {
			KVs []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"kvs"`
			More bool `json:"more"`
		}
		e.post(b, "/v3/kv/range", map[string]any{"key": enc(from), "range_end": enc(end), "limit": 500}, &out)
		var last []byte
		for _, kv := range out.KVs {
			key, err := base64.StdEncoding.DecodeString(kv.Key)
			must(b, err)
			value, err := base64.StdEncoding.DecodeString(kv.Value)
			must(b, err)
			n += int64(len(key) + len(value))
			last = key
		}
		if !out.More || last == nil {
			return n
		}
		from = append(last, 0)
	}
}

// waitJSONLine waits for a line starting with '{' in the output of cmd, written to the file at path, and returns it.
func waitJSONLine(b *testing.B, cmd *exec.Cmd, path string, timeout time.Duration) string {
	b.Helper()
	var data []byte
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		var err error
		data, err = os.ReadFile(path)
		must(b, err)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "{") {
				return line
			}
		}
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			b.Fatalf("%s ended without its report:\n%s", cmd.Path, data)
		}
	}
	b.Fatalf("no report from %s after %v:\n%s", cmd.Path, timeout, data)
	return ""
}

// waitReconcilesSettled waits until the operator whose metrics are at url has reconciled and its count of
// reconciles has not moved for 15 s: a restarted operator has then been through the objects it found.
func waitReconcilesSettled(b *testing.B, url string, timeout time.Duration) {
	b.Helper()
	last, since := -1.0, time.Now()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		page, err := scrapePage(url)
		if err != nil {
			continue // not serving yet
		}
		n := sumSamples(parseSamples(page), "controller_runtime_reconcile_total", nil)
		if n != last {
			last, since = n, time.Now()
			continue
		}
		if n > 0 && time.Since(since) >= 15*time.Second {
			return
		}
	}
	b.Fatalf("the operator's reconciles did not stop within %v", timeout)
}
