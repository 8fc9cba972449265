package stripesim

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// BenchmarkSimpleRequests measures the simulator's throughput for simple requests (retrieving a customer) over
// loopback HTTP with rate limiting off, from parallel keep-alive clients. It reports requests per second: the
// simulator must never be the bottleneck of the operator's benchmarks (target: 5,000/s or more on 2 cores).
func BenchmarkSimpleRequests(b *testing.B) {
	sim := New(Options{RateLimitOff: true, Seed: 1})
	srv := newBenchServer(b, sim)
	cus, err := stripeClient(srv, "sk_test_bench").Customers.New(&stripe.CustomerParams{Email: stripe.String("b@x.y")})
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr}
	url := srv + "/v1/customers/" + cus.ID
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer sk_test_bench")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func newBenchServer(b *testing.B, sim *Sim) string {
	b.Helper()
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	l, err := (&net.ListenConfig{}).Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}
