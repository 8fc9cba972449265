package webhookreceiver

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stripe/stripe-go/v76/webhook"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

// testEnv starts the control plane on first use, so the fuzz targets (which never reach it) do not.
func testEnv(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() { env, envErr = testenv.Start() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

const (
	secretA = "whsec_test_secret_a"
	secretB = "whsec_test_secret_b"
)

func eventJSON(id, typ string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":1700000000,`+
		`"livemode":false,"type":%q,"data":{"object":{"id":"cus_123","object":"customer","metadata":{}}},`+
		`"request":{"id":"req_1","idempotency_key":null}}`, id, typ))
}

func signed(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret,
		Timestamp: at}).Header
}

func newHandler(c client.Client, ns string, secrets ...string) *Handler {
	return &Handler{Client: c, Namespace: ns, Log: logr.Discard(),
		Secrets: func(context.Context) ([]string, error) { return secrets, nil }}
}

func post(h http.Handler, body []byte, header string) int {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, Path, bytes.NewReader(body))
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func storedEvents(t *testing.T, c client.Client, ns string) []billingv1.StripeEvent {
	t.Helper()
	l := &billingv1.StripeEventList{}
	if err := c.List(t.Context(), l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestHandlerTable(t *testing.T) {
	e := testEnv(t)
	now := time.Now()
	valid := eventJSON("evt_Valid1", "customer.updated")
	twoV1 := func(payload []byte) string {
		ts := now.Unix()
		a := hex.EncodeToString(webhook.ComputeSignature(time.Unix(ts, 0), payload, "whsec_old"))
		b := hex.EncodeToString(webhook.ComputeSignature(time.Unix(ts, 0), payload, secretA))
		return fmt.Sprintf("t=%d,v1=%s,v1=%s", ts, a, b)
	}
	big := append([]byte(`{"id":"evt_big","object":"event","type":"customer.updated","pad":"`),
		bytes.Repeat([]byte("x"), 2<<20)...)
	cases := []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		want    int
		stored  int
	}{
		{"a valid event", valid, signed(valid, secretA, now), []string{secretA}, 200, 1},
		{"a bad signature (tampered body)", append([]byte(" "), valid...), signed(valid, secretA, now),
			[]string{secretA}, 400, 0},
		{"the wrong secret", valid, signed(valid, "whsec_wrong", now), []string{secretA}, 400, 0},
		{"two v1 signatures, one valid (Stripe rolling a secret)", valid, twoV1(valid), []string{secretA}, 200, 1},
		{"two configured secrets, signed with the second", valid, signed(valid, secretB, now),
			[]string{secretA, secretB}, 200, 1},
		{"a timestamp 301 s old (replay)", valid, signed(valid, secretA, now.Add(-301*time.Second)),
			[]string{secretA}, 400, 0},
		// The table is built before the cases run, so the margin covers the seconds they take.
		{"a timestamp over 300 s in the future", valid, signed(valid, secretA, now.Add(330*time.Second)),
			[]string{secretA}, 400, 0},
		{"a missing header", valid, "", []string{secretA}, 400, 0},
		{"a malformed header", valid, "v1=abc,t=notanumber", []string{secretA}, 400, 0},
		{"a 2 MiB body", big, signed(big, secretA, now), []string{secretA}, 413, 0},
		{"invalid JSON behind a valid signature", []byte("{not json"), signed([]byte("{not json"), secretA, now),
			[]string{secretA}, 400, 0},
		{"a type the operator does not use", eventJSON("evt_Unknown", "charge.refunded"),
			signed(eventJSON("evt_Unknown", "charge.refunded"), secretA, now), []string{secretA}, 200, 0},
		{"no signing secret configured", valid, signed(valid, secretA, now), nil, 503, 0},
		{"a later API's type the operator uses (a meter deactivated)", eventJSON("evt_Meter1",
			"billing.meter.deactivated"), signed(eventJSON("evt_Meter1", "billing.meter.deactivated"), secretA, now),
			[]string{secretA}, 200, 1},
	}
	var logs testenv.SyncBuffer
	logger := funcr.New(func(prefix, args string) { _, _ = fmt.Fprintln(&logs, prefix, args) },
		funcr.Options{Verbosity: 9})
	t.Cleanup(func() {
		// Nothing the receiver logged may carry a signing secret or an event body.
		out := logs.String()
		if !strings.Contains(out, "Storing a Stripe event failed") || !strings.Contains(out, "evt_Valid1") {
			t.Errorf("the failures were not logged with their event ID:\n%s", out)
		}
		for _, leak := range []string{secretA, secretB, "whsec_old", `"object":"event"`, "cus_123"} {
			if strings.Contains(out, leak) {
				t.Errorf("the receiver logged %q:\n%s", leak, out)
			}
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, err := e.Namespace(t.Context(), "recv")
			if err != nil {
				t.Fatal(err)
			}
			h := newHandler(e.Client, ns, c.secrets...)
			h.Log = logger
			if got := post(h, c.body, c.header); got != c.want {
				t.Errorf("status %d, want %d", got, c.want)
			}
			if n := len(storedEvents(t, e.Client, ns)); n != c.stored {
				t.Errorf("%d StripeEvents stored, want %d", n, c.stored)
			}
		})
	}

	t.Run("the stored event", func(t *testing.T) {
		ns, _ := e.Namespace(t.Context(), "recv")
		h := newHandler(e.Client, ns, secretA)
		if got := post(h, valid, signed(valid, secretA, now)); got != 200 {
			t.Fatalf("status %d", got)
		}
		got := &billingv1.StripeEvent{}
		if err := e.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: EventName("evt_Valid1")},
			got); err != nil {
			t.Fatal(err)
		}
		s := got.Spec
		if s.EventID != "evt_Valid1" || s.Type != "customer.updated" || s.Created != 1700000000 ||
			s.APIVersion != "2023-10-16" || s.ObjectID != "cus_123" || s.ObjectType != "customer" ||
			!strings.HasPrefix(s.Payload, `{"id":"evt_Valid1"`) {
			t.Errorf("spec %+v", s)
		}
	})
	t.Run("a duplicate is acknowledged and stored once", func(t *testing.T) {
		ns, _ := e.Namespace(t.Context(), "recv")
		h := newHandler(e.Client, ns, secretA)
		for range 3 {
			if got := post(h, valid, signed(valid, secretA, time.Now())); got != 200 {
				t.Fatalf("status %d", got)
			}
		}
		if n := len(storedEvents(t, e.Client, ns)); n != 1 {
			t.Errorf("%d stored", n)
		}
	})
	t.Run("another API version is accepted, verified, and recorded", func(t *testing.T) {
		ns, _ := e.Namespace(t.Context(), "recv")
		h := newHandler(e.Client, ns, secretA)
		body := bytes.Replace(eventJSON("evt_Old", "customer.updated"), []byte("2023-10-16"), []byte("2022-11-15"), 1)
		if got := post(h, body, signed(body, secretA, now)); got != 200 {
			t.Fatalf("status %d", got)
		}
		if evs := storedEvents(t, e.Client, ns); len(evs) != 1 || evs[0].Spec.APIVersion != "2022-11-15" {
			t.Errorf("stored %+v", evs)
		}
	})
	t.Run("the API server unavailable is a 503, so Stripe retries", func(t *testing.T) {
		dead, err := client.New(&rest.Config{Host: "http://" + testenv.FreeAddr(t), Timeout: time.Second},
			client.Options{Scheme: e.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		h := newHandler(dead, "default", secretA)
		h.Log = logger
		if got := post(h, valid, signed(valid, secretA, now)); got != 503 {
			t.Errorf("status %d, want 503", got)
		}
	})
	t.Run("only POST", func(t *testing.T) {
		h := newHandler(e.Client, "default", secretA)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, Path, nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d", rec.Code)
		}
	})
}

func TestSecretRotationWithoutRestart(t *testing.T) {
	e := testEnv(t)
	ns, _ := e.Namespace(t.Context(), "recv")
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stripe-credentials"},
		Data: map[string][]byte{SecretsField: []byte(secretA)}}
	if err := e.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	h := newHandler(e.Client, ns)
	h.Secrets = SecretsFrom(e.Client, client.ObjectKeyFromObject(s))
	body := eventJSON("evt_Rotate1", "customer.updated")
	if got := post(h, body, signed(body, secretB, time.Now())); got != 400 {
		t.Fatalf("signed with a secret not configured yet: %d", got)
	}
	s.Data[SecretsField] = []byte(secretA + ",\n" + secretB)
	if err := e.Client.Update(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if got := post(h, body, signed(body, secretB, time.Now())); got != 200 {
		t.Errorf("after the rotation: %d", got)
	}
}

func TestServerHealthAndTimeouts(t *testing.T) {
	e := testEnv(t)
	ready := false
	srv := &Server{Addr: "127.0.0.1:0", Handler: newHandler(e.Client, "default", secretA),
		Ready: func(*http.Request) error {
			if !ready {
				return fmt.Errorf("not yet")
			}
			return nil
		}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr, err := srv.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	get := func(path string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 503 || get(Path) != 405 {
		t.Error("health, readiness or method handling is wrong")
	}
	ready = true
	if get("/readyz") != 200 {
		t.Error("not ready once the check passes")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if srv.NeedLeaderElection() {
		t.Error("the receiver must run on every replica")
	}
}

func TestEventNameIsAValidName(t *testing.T) {
	a, b := EventName("evt_1NabC"), EventName("evt_1nabc")
	if a == b || len(a) > 63 || strings.ToLower(a) != a || a != EventName("evt_1NabC") {
		t.Errorf("names %s %s", a, b)
	}
}

// A fresh handler serves concurrent deliveries: the first requests of a restarted receiver arrive together (Stripe's
// retries after an outage). `make test` runs this under the race detector.
func TestHandlerServesConcurrentDeliveries(t *testing.T) {
	e := testEnv(t)
	ns, err := e.Namespace(t.Context(), "concurrent")
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(e.Client, ns, secretA)
	const n = 16
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := eventJSON(fmt.Sprintf("evt_Concurrent%02d", i), "customer.updated")
			codes <- post(h, body, signed(body, secretA, time.Now()))
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("a concurrent delivery got %d", code)
		}
	}
	if got := len(storedEvents(t, e.Client, ns)); got != n {
		t.Errorf("%d events stored, want %d", got, n)
	}
}
