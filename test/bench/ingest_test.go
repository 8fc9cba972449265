package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stripe/stripe-go/v76/webhook"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

const benchSecret = "whsec_bench"

func benchEvent(i int, prefix string) []byte {
	return []byte(fmt.Sprintf(`{"id":"evt_%s%08d","object":"event","api_version":"2023-10-16","created":%d,`+
		`"livemode":false,"type":"customer.subscription.updated","pending_webhooks":1,"request":{"id":"req_%d",`+
		`"idempotency_key":null},"data":{"object":{"id":"sub_%08d","object":"subscription","status":"active",`+
		`"customer":"cus_%08d","current_period_start":1700000000,"current_period_end":1702592000,`+
		`"cancel_at_period_end":false,"metadata":{"k8s_uid":"00000000-0000-0000-0000-%012d"},"items":{"object":"list",`+
		`"data":[{"id":"si_%08d","object":"subscription_item","quantity":1,"price":{"id":"price_1","object":"price",`+
		`"unit_amount":2000,"currency":"usd"}}]}},"previous_attributes":{"status":"trialing"}}}`,
		prefix, i, 1700000000+i, i, i, i, i, i))
}

// BenchmarkIngest measures, against the same real API server in one run: raw StripeEvent creates, the receiver's
// verify-persist-acknowledge rate at saturation over HTTP, and its latency at a steady 100 events/s.
func BenchmarkIngest(b *testing.B) {
	n, paced := 2000, 10*time.Second
	if benchN() < 1000 {
		n, paced = 500, 3*time.Second
	}
	env, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	ns := "ingest"
	must(b, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	h := &webhookreceiver.Handler{Client: env.Client, Namespace: ns, Log: logr.Discard(),
		Secrets: func(context.Context) ([]string, error) { return []string{benchSecret}, nil }}
	srv := httptest.NewServer((&webhookreceiver.Server{Handler: h}).Mux())
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const workers = 8

	parallel := func(count int, do func(i int)) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < count; i = int(next.Add(1)) - 1 {
					do(i)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}

	// Raw creates of the same objects the receiver stores, run before and after the ingest so that neither gets
	// the warmer API server; the faster of the two is the reference (a conservative ratio).
	rawRun := func(prefix string) time.Duration {
		return parallel(n, func(i int) {
			id := fmt.Sprintf("evt_%s%08d", prefix, i)
			obj := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: webhookreceiver.EventName(id)},
				Spec: billingv1.StripeEventSpec{EventID: id, Type: "customer.subscription.updated", Created: 1700000000,
					ObjectID: "sub_1", ObjectType: "subscription", Payload: string(benchEvent(i, prefix))}}
			if err := env.Client.Create(ctx, obj); err != nil {
				b.Error(err)
			}
		})
	}
	rawElapsed := rawRun("rawa")

	post := func(body []byte) (int, time.Duration) {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+webhookreceiver.Path, bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
			Payload: body, Secret: benchSecret}).Header)
		resp, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return 0, 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	ingestElapsed := parallel(n, func(i int) {
		if code, _ := post(benchEvent(i, "sat")); code != http.StatusOK {
			b.Errorf("status %d", code)
		}
	})

	rawElapsed = min(rawElapsed, rawRun("rawb"))

	// A steady 100 events/s.
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	tick := time.NewTicker(10 * time.Millisecond)
	deadline := time.Now().Add(paced)
	for i := 0; time.Now().Before(deadline); i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, d := post(benchEvent(i, "paced"))
			if code != http.StatusOK {
				b.Errorf("status %d", code)
			}
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		}()
	}
	tick.Stop()
	wg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}

	l := &billingv1.StripeEventList{}
	must(b, env.Client.List(ctx, l, client.InNamespace(ns), client.Limit(200)))
	size := 0
	for i := range l.Items {
		data, _ := json.Marshal(&l.Items[i])
		size += len(data)
	}
	raw := float64(n) / rawElapsed.Seconds()
	ingest := float64(n) / ingestElapsed.Seconds()
	extra := map[string]any{"n": n, "workers": workers, "machine": "2 cores", "date": time.Now().Format("2006-01-02")}
	figure("ingest_raw_creates_per_second", raw, "objects/s", extra)
	figure("ingest_events_per_second", ingest, "events/s", extra)
	figure("ingest_ratio_to_raw", ingest/raw, "ratio", extra)
	figure("ingest_p50_ms_at_100rps", pct(0.50), "ms", map[string]any{"events": len(latencies)})
	figure("ingest_p99_ms_at_100rps", pct(0.99), "ms", map[string]any{"events": len(latencies)})
	figure("stored_bytes_per_event", float64(size)/float64(max(len(l.Items), 1)), "bytes", nil)
}
