package stripesim

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

func customerWithKey(key, uid string) *stripe.CustomerParams {
	p := &stripe.CustomerParams{Email: stripe.String("i@example.com")}
	p.AddMetadata("k8s_uid", uid)
	p.SetIdempotencyKey(key)
	return p
}

func TestIdempotency(t *testing.T) {
	t.Run("same key and parameters replays the stored response", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		first := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		again := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		if again.ID != first.ID {
			t.Fatalf("replay returned %s, want %s", again.ID, first.ID)
		}
		if again.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
			t.Error("replay lacks Idempotent-Replayed: true")
		}
		if first.LastResponse.Header.Get("Idempotent-Replayed") != "" {
			t.Error("first response marked as replayed")
		}
		if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 1 {
			t.Errorf("%d customers for one key", n)
		}
	})
	t.Run("same key and other parameters is an idempotency_error", func(t *testing.T) {
		_, sc := newClient(t, Options{})
		must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		_, err := sc.Customers.New(customerWithKey("key-1", "uid-2"))
		stripeErr(t, err, 400, stripe.ErrorTypeIdempotency, "")
	})
	t.Run("keys are scoped per account", func(t *testing.T) {
		sim, srv := newSim(t, Options{})
		sim.RegisterKey(KeyConfig{Key: "sk_test_other", Account: "acct_other"})
		a := must(stripeClient(srv.URL, "sk_test_a").Customers.New(customerWithKey("key-1", "uid-1")))
		b := must(stripeClient(srv.URL, "sk_test_other").Customers.New(customerWithKey("key-1", "uid-1")))
		if a.ID == b.ID {
			t.Error("two accounts shared an idempotency key")
		}
	})
	t.Run("a key in flight is refused with 409", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		must(sim.AddFault(Fault{Kind: FaultLatency, Method: "POST", Path: "/v1/customers", LatencyMS: 500,
			Count: 1}))
		var wg sync.WaitGroup
		wg.Add(1)
		var firstErr error
		go func() {
			defer wg.Done()
			_, firstErr = sc.Customers.New(customerWithKey("key-1", "uid-1"))
		}()
		time.Sleep(150 * time.Millisecond)
		_, err := sc.Customers.New(customerWithKey("key-1", "uid-1"))
		stripeErr(t, err, 409, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeIdempotencyKeyInUse)
		wg.Wait()
		if firstErr != nil {
			t.Fatal(firstErr)
		}
	})
	t.Run("a request that fails validation stores nothing", func(t *testing.T) {
		_, sc := newClient(t, Options{})
		bad := customerWithKey("key-1", "uid-1")
		bad.AddMetadata(strings.Repeat("k", 41), "v")
		_, err := sc.Customers.New(bad)
		stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		good := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		if good.LastResponse.Header.Get("Idempotent-Replayed") != "" {
			t.Error("the failed request's result was stored")
		}
	})
	t.Run("an expired key executes again", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		first := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		if n := sim.ExpireIdempotencyKeys(); n != 1 {
			t.Fatalf("expired %d keys", n)
		}
		again := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		if again.ID == first.ID {
			t.Error("an expired key was replayed")
		}
		if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 2 {
			t.Errorf("%d customers; the expired key should have created a second", n)
		}
	})
	t.Run("keys expire after the configured window", func(t *testing.T) {
		now := time.Unix(1_700_000_000, 0)
		var mu sync.Mutex
		_, sc := newClient(t, Options{IdempotencyTTL: time.Hour,
			Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
		first := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
		mu.Lock()
		now = now.Add(59 * time.Minute)
		mu.Unlock()
		if again := must(sc.Customers.New(customerWithKey("key-1", "uid-1"))); again.ID != first.ID {
			t.Error("not replayed within the window")
		}
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		if again := must(sc.Customers.New(customerWithKey("key-1", "uid-1"))); again.ID == first.ID {
			t.Error("replayed after the window")
		}
	})
}

func TestAuthentication(t *testing.T) {
	sim, srv := newSim(t, Options{})
	sim.RegisterKey(KeyConfig{Key: "rk_test_customers", Permissions: []string{"rak_customer_write"}})
	sim.RegisterKey(KeyConfig{Key: "rk_test_readonly", Permissions: []string{"rak_customer_read"}})
	sim.RegisterKey(KeyConfig{Key: "sk_test_rolled", Revoked: true})

	for _, key := range []string{"sk_test_rolled", "rk_test_unregistered", "not_a_key", "pk_test_publishable"} {
		t.Run("401 for "+key, func(t *testing.T) {
			_, err := stripeClient(srv.URL, key).Customers.New(&stripe.CustomerParams{})
			se := stripeErr(t, err, 401, stripe.ErrorTypeInvalidRequest, "")
			if strings.Contains(se.Msg, key) && len(key) > 12 {
				t.Errorf("the error shows the whole key: %q", se.Msg)
			}
		})
	}
	t.Run("401 without a key", func(t *testing.T) {
		if status, _ := rawRequest(t, http.MethodGet, srv.URL+"/v1/customers", ""); status != http.StatusUnauthorized {
			t.Errorf("status %d", status)
		}
	})
	t.Run("a restricted key works within its permissions; write implies read", func(t *testing.T) {
		rc := stripeClient(srv.URL, "rk_test_customers")
		cus := must(rc.Customers.New(&stripe.CustomerParams{}))
		must(rc.Customers.Get(cus.ID, nil))
	})
	t.Run("403 names the missing permission", func(t *testing.T) {
		_, err := stripeClient(srv.URL, "rk_test_customers").Products.New(&stripe.ProductParams{
			Name: stripe.String("x")})
		se := stripeErr(t, err, 403, stripe.ErrorTypeInvalidRequest, "")
		if !strings.Contains(se.Msg, "rak_product_write") {
			t.Errorf("message %q does not name rak_product_write", se.Msg)
		}
		_, err = stripeClient(srv.URL, "rk_test_readonly").Customers.New(&stripe.CustomerParams{})
		se = stripeErr(t, err, 403, stripe.ErrorTypeInvalidRequest, "")
		if !strings.Contains(se.Msg, "rak_customer_write") {
			t.Errorf("message %q does not name rak_customer_write", se.Msg)
		}
	})
	t.Run("live and test mode keep separate data", func(t *testing.T) {
		cus := must(stripeClient(srv.URL, "sk_live_x").Customers.New(&stripe.CustomerParams{}))
		if !cus.Livemode {
			t.Error("a live key created a test-mode object")
		}
		_, err := stripeClient(srv.URL, "sk_test_x").Customers.Get(cus.ID, nil)
		stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	})
}

func TestRateLimit(t *testing.T) {
	_, srv := newSim(t, Options{TestRate: 5, LiveRate: 50})
	sc := stripeClient(srv.URL, "sk_test_x")
	limited := 0
	for range 20 {
		_, err := sc.Customers.New(&stripe.CustomerParams{})
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode == 429 {
			if se.Code != stripe.ErrorCodeRateLimit {
				t.Errorf("429 with code %q", se.Code)
			}
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 20 against 5/s with a burst of 5: about 15 refused.
	if limited < 10 || limited > 15 {
		t.Errorf("%d of 20 requests rate-limited at 5/s", limited)
	}
	// Live mode has its own bucket.
	if _, err := stripeClient(srv.URL, "sk_live_x").Customers.New(&stripe.CustomerParams{}); err != nil {
		t.Errorf("live key limited by the test bucket: %v", err)
	}
}

func TestFaults(t *testing.T) {
	t.Run("error faults answer without executing", func(t *testing.T) {
		for _, c := range []struct {
			fault  Fault
			status int
			typ    stripe.ErrorType
			code   stripe.ErrorCode
		}{
			{Fault{Kind: FaultError}, 500, stripe.ErrorTypeAPI, ""},
			{Fault{Kind: FaultError, Status: 503}, 503, stripe.ErrorTypeAPI, ""},
			{Fault{Kind: FaultError, Status: 429, Code: "lock_timeout"}, 429, stripe.ErrorTypeInvalidRequest,
				stripe.ErrorCodeLockTimeout},
		} {
			sim, sc := newClient(t, Options{})
			c.fault.Method, c.fault.Path, c.fault.Count = "POST", "/v1/customers*", 1
			must(sim.AddFault(c.fault))
			_, err := sc.Customers.New(customerWithKey("k", "uid-1"))
			stripeErr(t, err, c.status, c.typ, c.code)
			if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 0 {
				t.Errorf("%d: the request was executed", c.status)
			}
			// The key was not consumed: the retry executes.
			if got := must(sc.Customers.New(customerWithKey("k", "uid-1"))); got.LastResponse.Header.Get(
				"Idempotent-Replayed") != "" {
				t.Errorf("%d: retry was a replay", c.status)
			}
		}
	})
	t.Run("rate and path matching", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		must(sim.AddFault(Fault{Kind: FaultError, Path: "/v1/products*", Rate: 0.5}))
		failed := 0
		for range 200 {
			if _, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("p")}); err != nil {
				failed++
			}
		}
		if failed < 70 || failed > 130 {
			t.Errorf("rate 0.5 failed %d of 200", failed)
		}
		must(sc.Customers.New(&stripe.CustomerParams{})) // another path is not affected
	})
	t.Run("latency", func(t *testing.T) {
		sim, sc := newClient(t, Options{})
		must(sim.AddFault(Fault{Kind: FaultLatency, LatencyMS: 300}))
		start := time.Now()
		must(sc.Customers.New(&stripe.CustomerParams{}))
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("request took %v with 300 ms injected", d)
		}
	})
	for _, response := range []string{"500", "drop"} {
		t.Run("commit then fail with "+response, func(t *testing.T) {
			sim, sc := newClient(t, Options{})
			must(sim.AddFault(Fault{Kind: FaultCommitThenFail, Method: "POST", Path: "/v1/customers",
				Response: response, Count: 1}))
			_, err := sc.Customers.New(customerWithKey("key-1", "uid-1"))
			if err == nil {
				t.Fatal("the client saw success")
			}
			if response == "500" {
				stripeErr(t, err, 500, stripe.ErrorTypeAPI, "")
			}
			if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 1 {
				t.Fatalf("%d customers after commit-then-fail, want the committed one", n)
			}
			// Retrying with the same key returns the committed object, not a second one.
			again := must(sc.Customers.New(customerWithKey("key-1", "uid-1")))
			if again.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
				t.Error("the retry was not a replay")
			}
			if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 1 {
				t.Errorf("%d customers after the retry", n)
			}
			// Retrying with a new key (what stripe-go does without one) makes the duplicate idempotency prevents.
			must(sc.Customers.New(customerWithKey("key-2", "uid-1")))
			if n := sim.ObjectsByUID()["customer"]["uid-1"]; n != 2 {
				t.Errorf("%d customers after a retry with a new key", n)
			}
		})
	}
}

func TestAdminAPI(t *testing.T) {
	sim, srv := newSim(t, Options{})
	sc := stripeClient(srv.URL, "sk_test_x")
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		code, out, _ := adminRequest(t, method, srv.URL+path, body)
		return code, out
	}
	if code, _ := do("GET", "/_sim/health", ""); code != 200 {
		t.Fatalf("health %d", code)
	}
	if code, _ := do("POST", "/_sim/keys", `{"key":"rk_test_admin","permissions":["rak_customer_write"]}`); code != 200 {
		t.Fatalf("register key %d", code)
	}
	must(stripeClient(srv.URL, "rk_test_admin").Customers.New(customerWithKey("k", "uid-9")))
	if code, _ := do("POST", "/_sim/faults", `{"kind":"nonsense"}`); code != 400 {
		t.Errorf("invalid fault accepted: %d", code)
	}
	code, f := do("POST", "/_sim/faults", `{"kind":"error","status":503,"path":"/v1/products*","count":1}`)
	if code != 200 || f["id"] == "" {
		t.Fatalf("add fault %d %v", code, f)
	}
	_, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("p")})
	stripeErr(t, err, 503, stripe.ErrorTypeAPI, "")

	_, stats := do("GET", "/_sim/stats", "")
	reqs := stats["requests"].(map[string]any)
	if reqs["POST /v1/customers"].(map[string]any)["200"].(float64) != 1 ||
		reqs["POST /v1/products"].(map[string]any)["503"].(float64) != 1 {
		t.Errorf("stats: %v", reqs)
	}
	_, objs := do("GET", "/_sim/objects", "")
	if objs["customer"].(map[string]any)["uid-9"].(float64) != 1 {
		t.Errorf("objects: %v", objs)
	}
	if code, _ := do("PUT", "/_sim/rate-limits", `{"test": 1}`); code != 200 {
		t.Errorf("rate limits %d", code)
	}
	if code, _ := do("POST", "/_sim/reset", ""); code != 200 {
		t.Fatal("reset")
	}
	if len(sim.ObjectsByUID()["customer"]) != 0 || len(sim.Faults()) != 0 || len(sim.Stats()) != 0 {
		t.Error("reset left state behind")
	}
	// An unknown API path is a Stripe-shaped 404.
	status, header := rawRequest(t, http.MethodGet, srv.URL+"/v1/nonsense", "sk_test_x")
	if status != http.StatusNotFound || header.Get("Request-Id") == "" {
		t.Errorf("unknown path: %d", status)
	}
}
