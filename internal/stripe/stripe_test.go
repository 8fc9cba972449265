package stripe

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/fairness"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
)

func newSimClient(t *testing.T, opts stripesim.Options, key string) (*stripesim.Sim, *Client, *strings.Builder) {
	t.Helper()
	if opts.TestRate == 0 {
		opts.RateLimitOff = true
	}
	sim := stripesim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	k, err := ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 2})
	f := NewFactory(Config{APIBase: srv.URL, Logger: logger, TestRate: 1000, LiveRate: 1000})
	return sim, f.Client(k, ""), &logs
}

func createCustomer(ctx context.Context, c *Client, key string) (*stripego.Customer, error) {
	p := &stripego.CustomerParams{Email: stripego.String("c@example.com")}
	return Call(ctx, c, Op{Resource: "customer", Operation: "create", IdempotencyKey: key}, &p.Params,
		func() (*stripego.Customer, error) { return c.API.Customers.New(p) })
}

func TestClassifyOverHTTP(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		fault *stripesim.Fault
		setup func(*stripesim.Sim)
		key   string
		call  func(*Client) error
		class Class
	}{
		{name: "500", fault: &stripesim.Fault{Kind: "error"}, class: ClassUnavailable},
		{name: "503", fault: &stripesim.Fault{Kind: "error", Status: 503}, class: ClassUnavailable},
		{name: "429 rate_limit", setup: func(s *stripesim.Sim) { s.SetRateLimits(0.001, 0, false) },
			class: ClassRateLimited},
		{name: "429 lock_timeout", fault: &stripesim.Fault{Kind: "error", Status: 429, Code: "lock_timeout"},
			class: ClassInProgress},
		{name: "400 invalid", call: func(c *Client) error {
			p := &stripego.CustomerParams{Email: stripego.String("no-at-sign")}
			_, err := Call(ctx, c, Op{Resource: "customer", Operation: "create", IdempotencyKey: "k-invalid"},
				&p.Params, func() (*stripego.Customer, error) { return c.API.Customers.New(p) })
			return err
		}, class: ClassInvalidRequest},
		{name: "404", call: func(c *Client) error {
			p := &stripego.CustomerParams{}
			_, err := Call(ctx, c, Op{Resource: "customer", Operation: "retrieve"}, &p.Params,
				func() (*stripego.Customer, error) { return c.API.Customers.Get("cus_missing", p) })
			return err
		}, class: ClassNotFound},
		{name: "idempotency_error", call: func(c *Client) error {
			if _, err := createCustomer(ctx, c, "same-key"); err != nil {
				return err
			}
			p := &stripego.CustomerParams{Email: stripego.String("other@example.com")}
			_, err := Call(ctx, c, Op{Resource: "customer", Operation: "create", IdempotencyKey: "same-key"},
				&p.Params, func() (*stripego.Customer, error) { return c.API.Customers.New(p) })
			return err
		}, class: ClassIdempotencyMismatch},
		{name: "401", key: "sk_test_revoked_key", setup: func(s *stripesim.Sim) {
			s.RegisterKey(stripesim.KeyConfig{Key: "sk_test_revoked_key", Revoked: true})
		}, class: ClassAuthentication},
		{name: "403", key: "rk_test_no_customers", setup: func(s *stripesim.Sim) {
			s.RegisterKey(stripesim.KeyConfig{Key: "rk_test_no_customers", Permissions: []string{"rak_price_read"}})
		}, class: ClassPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := c.key
			if key == "" {
				key = "sk_test_classify"
			}
			sim, cl, _ := newSimClient(t, stripesim.Options{}, key)
			if c.fault != nil {
				if _, err := sim.AddFault(*c.fault); err != nil {
					t.Fatal(err)
				}
			}
			if c.setup != nil {
				c.setup(sim)
			}
			call := c.call
			if call == nil {
				call = func(cl *Client) error {
					// Two calls, so a rate limit of one request per 1000 s refuses the second.
					if _, err := createCustomer(ctx, cl, "k1"); err != nil {
						return err
					}
					_, err := createCustomer(ctx, cl, "k2")
					return err
				}
			}
			err := call(cl)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a classified error, got %v", err)
			}
			if ce.Class != c.class {
				t.Fatalf("class %s, want %s (%v)", ce.Class, c.class, err)
			}
			if ce.HTTPStatus != 0 && ce.RequestID == "" {
				t.Error("no request ID on a Stripe error")
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(stripesim.New(stripesim.Options{}))
		srv.Close()
		k, _ := ParseKey("sk_test_closed_server")
		cl := NewFactory(Config{APIBase: srv.URL, Logger: logrDiscard()}).Client(k, "")
		_, err := createCustomer(ctx, cl, "k")
		if ce := Classify(err); ce == nil || ce.Class != ClassUnavailable {
			t.Fatalf("class %v for %v", ce, err)
		}
	})
}

func TestCallSendsTheIdempotencyKeyAndLogsWrites(t *testing.T) {
	sim, cl, logs := newSimClient(t, stripesim.Options{}, "sk_test_secret_value_1234")
	ctx := context.Background()
	before := testutil.ToFloat64(requests.WithLabelValues("customer", "create", "success"))
	first, err := createCustomer(ctx, cl, "k8s-uid-create-g1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := createCustomer(ctx, cl, "k8s-uid-create-g1")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Errorf("the same key created %s and %s", first.ID, again.ID)
	}
	if n := len(sim.Stats()); n == 0 {
		t.Error("no requests reached the simulator")
	}
	if got := testutil.ToFloat64(requests.WithLabelValues("customer", "create", "success")) - before; got != 2 {
		t.Errorf("requests metric grew by %v, want 2", got)
	}
	out := logs.String()
	if !strings.Contains(out, "k8s-uid-create-g1") || !strings.Contains(out, first.LastResponse.RequestID) {
		t.Errorf("write log lacks the idempotency key or request ID:\n%s", out)
	}
	if strings.Contains(out, "sk_test_secret_value_1234") {
		t.Errorf("the API key was logged:\n%s", out)
	}
	// A write without a key is refused before anything is sent.
	if _, err := createCustomer(ctx, cl, ""); err == nil {
		t.Error("a write without an idempotency key was sent")
	}
}

func TestParseKey(t *testing.T) {
	for key, want := range map[string]struct{ ok, live, restricted bool }{
		"sk_test_abcdefgh": {ok: true}, "sk_live_abcdefgh": {ok: true, live: true},
		"rk_test_abcdefgh": {ok: true, restricted: true}, "rk_live_abcdefgh": {ok: true, live: true, restricted: true},
		"pk_test_abcdefgh": {}, "whatever": {}, "sk_test_": {},
	} {
		k, err := ParseKey(key)
		if (err == nil) != want.ok || k.Live != want.live || k.Restricted != want.restricted {
			t.Errorf("%s: %+v %v", key, k, err)
		}
		if err == nil && strings.Contains(k.String(), key) {
			t.Errorf("String shows the whole key: %s", k)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	a := IdempotencyKey("uid", "create", 1)
	if a != IdempotencyKey("uid", "create", 1) {
		t.Error("not deterministic")
	}
	distinct := map[string]bool{a: true}
	for _, k := range []string{IdempotencyKey("uid", "create", 2), IdempotencyKey("uid2", "create", 1),
		IdempotencyKey("uid", "update", 1, "name=a"), IdempotencyKey("uid", "update", 1, "name=b")} {
		if distinct[k] {
			t.Errorf("collision: %s", k)
		}
		distinct[k] = true
		if len(k) > 255 {
			t.Errorf("too long: %s", k)
		}
	}
	if FormFingerprint(map[string]string{"b": "2", "a": "1"}) != FormFingerprint(map[string]string{"a": "1", "b": "2"}) {
		t.Error("fingerprint depends on map order")
	}
}

func TestBudgetPrioritisesAndBacksOff(t *testing.T) {
	b := NewBudget(20)
	ctx := context.Background()
	// A full bucket holds one token less than the account's (a second's worth): 19 go at once, the 20th waits for
	// the refill (50 ms at 20/s), so requests that reach Stripe closer together than they left still find a token.
	start := time.Now()
	for range 19 {
		if _, err := b.Wait(ctx, PriorityHigh); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Wait(ctx, PriorityHigh); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("the 20th request went after %v: the burst is a whole second's worth, as large as the account's", d)
	}
	// With the bucket empty, a high-priority waiter that arrives after a low-priority one is still served first.
	order := make(chan Priority, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = b.Wait(ctx, PriorityLow); order <- PriorityLow }()
	time.Sleep(10 * time.Millisecond)
	go func() { defer wg.Done(); _, _ = b.Wait(ctx, PriorityHigh); order <- PriorityHigh }()
	wg.Wait()
	if first := <-order; first != PriorityHigh {
		t.Error("the low-priority waiter went first")
	}

	// A 429 halves the rate and pauses the bucket.
	b.Throttled()
	if r := b.Rate(); r != 10 {
		t.Errorf("rate after a 429: %v, want 10", r)
	}
	start = time.Now()
	if _, err := b.Wait(ctx, PriorityHigh); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("waited %v after a 429, want about a second", d)
	}
	for range 100 {
		b.Succeeded()
	}
	if r := b.Rate(); r != 20 {
		t.Errorf("rate after recovering: %v, want 20", r)
	}
	// A canceled context ends the wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	b.Throttled()
	if _, err := b.Wait(cctx, PriorityLow); err == nil {
		t.Error("wait ignored a canceled context")
	}
}

func logrDiscard() logr.Logger { return logr.Discard() }

// Waiting requests of one priority are served by namespace in turn: a namespace's one request is not held behind
// another's 60 queued ones, and a namespace of weight 2 gets twice the turns while both wait.
func TestBudgetServesNamespacesInTurn(t *testing.T) {
	b := NewFairBudget(200, fairness.Weights{"heavy": 2})
	ctx := context.Background()
	for range 200 { // drain the burst
		if _, err := b.Wait(ctx, PriorityHigh); err != nil {
			t.Fatal(err)
		}
	}
	// Hold the bucket while the waiters line up, so the order does not depend on goroutine scheduling.
	hold := func() {
		b.mu.Lock()
		b.pausedUntil = b.now().Add(300 * time.Millisecond)
		// Then one token every 5 ms, so that each grant's goroutine reports before the next grant.
		b.tokens, b.last = 0, b.pausedUntil
		b.mu.Unlock()
	}
	order := make(chan string, 200)
	var wg sync.WaitGroup
	start := func(ns string, n int) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.Wait(fairness.WithTenant(ctx, ns), PriorityHigh); err == nil {
					order <- ns
				}
			}()
		}
	}
	hold()
	start("bulk", 60)
	time.Sleep(50 * time.Millisecond) // the bulk is queued
	start("other", 1)
	wg.Wait()
	close(order)
	pos := 0
	for ns := range order {
		if ns == "other" {
			break
		}
		pos++
	}
	// Tagged at the line's virtual time, the other namespace's request goes second at the latest.
	if pos > 1 {
		t.Errorf("the other namespace's request was served after %d of the bulk's", pos)
	}

	order = make(chan string, 200)
	hold()
	start("heavy", 40)
	start("light", 40)
	wg.Wait()
	close(order)
	heavy := 0
	i := 0
	for ns := range order {
		if i < 30 && ns == "heavy" {
			heavy++
		}
		i++
	}
	if heavy < 19 || heavy > 21 {
		t.Errorf("the weight-2 namespace got %d of the first 30 turns, want about 20", heavy)
	}
}
