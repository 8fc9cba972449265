// Package chaos runs the operator as real processes against a real API server and the Stripe simulator while
// everything that can go wrong does: Stripe answers 5xx, 429, commits and then fails, and stalls; the operator
// process is SIGKILLed five times and the webhook receiver twice; webhooks arrive shuffled and duplicated. It then
// checks that every object converged to exactly one Stripe object and every event took effect once.
//
// CHAOS_N scales the load (default 500 Customers and 500 Subscriptions), CHAOS_SEED the simulator's randomness and
// the kill schedule (default 1), CHAOS_TIMEOUT the convergence deadline (default 60 s + 0.48 s per N); CHAOS_LOGS
// names a directory to keep the operator's and the receiver's logs in.
//
//	KUBEBUILDER_ASSETS=$(hack/control-plane.sh) go test -count=1 -v -timeout 20m ./test/chaos/
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/stripesim/schemacheck"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

const (
	// operatorNS holds the credentials Secret and, so, the StripeEvents; tenantNS the billing objects.
	operatorNS = "stripe-operator-system"
	tenantNS   = "chaos"
	apiKey     = "sk_test_chaos"
	cluster    = "chaos"
	// stripeRate is both the simulator's limit and the operator's budget, as against real Stripe.
	stripeRate = 100

	operatorKills = 5
	receiverKills = 2
)

// The faults, as the issue asks: 5% 5xx, 3% 429 and 2% latency spikes before execution (exclusive, so each at its
// own rate), and 2% of writes committed and then failed with a 500.
var faults = []stripesim.Fault{
	{Kind: stripesim.FaultError, Path: "/v1/*", Rate: 0.05, Status: http.StatusInternalServerError},
	{Kind: stripesim.FaultError, Path: "/v1/*", Rate: 0.03, Status: http.StatusTooManyRequests, Code: "rate_limit"},
	{Kind: stripesim.FaultLatency, Path: "/v1/*", Rate: 0.02, LatencyMS: 1500},
	{Kind: stripesim.FaultCommitThenFail, Method: http.MethodPost, Path: "/v1/*", Rate: 0.02},
}

// webhookOptions: Stripe's retries compressed into a minute, deliveries shuffled within a second, 30% twice.
var webhookOptions = stripesim.WebhookOptions{
	RetrySchedule: []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		3 * time.Second, 5 * time.Second, 8 * time.Second, 12 * time.Second, 20 * time.Second},
	Timeout: 5 * time.Second, ShuffleWindow: time.Second, DuplicateFraction: 0.3,
}

type config struct {
	n       int
	seed    uint64
	timeout time.Duration
}

func loadConfig(t *testing.T) config {
	t.Helper()
	c := config{n: 500, seed: 1}
	if v := os.Getenv("CHAOS_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CHAOS_N=%q: want a positive integer", v)
		}
		c.n = n
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil || s == 0 {
			t.Fatalf("CHAOS_SEED=%q: want a positive integer", v)
		}
		c.seed = s
	}
	// About twice what a run takes alone on 2 cores (N=500 converges in about 2m20s), since `make test` runs
	// other packages beside it.
	c.timeout = 60*time.Second + time.Duration(c.n)*480*time.Millisecond
	if v := os.Getenv("CHAOS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CHAOS_TIMEOUT=%q: %v", v, err)
		}
		c.timeout = d
	}
	return c
}

// suite is the running world: the API server, the simulator, and the two operator processes.
type suite struct {
	t      *testing.T
	cfg    config
	env    *testenv.Env
	c      client.Client
	sim    *stripesim.Sim
	simURL string
	// rec records every response of the simulator, validated against Stripe's schema at the end.
	rec      *schemacheck.Recorder
	operator *proc
	receiver *proc
	hookURL  string
	rng      *rand.Rand
	started  time.Time
	// receiverDown holds the windows the receiver was down, for the report.
	receiverDown []window
}

type window struct{ from, to time.Time }

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite takes minutes; it does not run with -short")
	}
	cfg := loadConfig(t)
	s := &suite{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed^0xc4a05))}
	s.started = time.Now()
	t.Logf("chaos: N=%d seed=%d convergence deadline %v", cfg.n, cfg.seed, cfg.timeout)

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	s.env, s.c = env, env.Client
	bin := buildOperator(t)
	t.Logf("chaos: control plane up and operator built in %v", time.Since(s.started).Round(time.Millisecond))

	// The simulator runs here, on a real TCP listener, so the suite can read its state.
	// StrictPaymentMethods: Stripe's rule that a default payment method is attached to the customer.
	s.sim = stripesim.New(stripesim.Options{TestRate: stripeRate, Seed: cfg.seed, StrictPaymentMethods: true})
	s.rec = schemacheck.NewRecorder(s.sim)
	srv := httptest.NewServer(s.rec)
	t.Cleanup(s.sim.Close)
	t.Cleanup(srv.Close)
	s.simURL = srv.URL
	s.sim.SetWebhookOptions(webhookOptions)
	for _, f := range faults {
		if _, err := s.sim.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}

	ctx := t.Context()
	for _, ns := range []string{operatorNS, tenantNS} {
		if err := s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS,
		Name: credentials.DefaultSecretName}, Data: map[string][]byte{credentials.APIKeyField: []byte(apiKey)}}); err != nil {
		t.Fatal(err)
	}

	// The receiver runs alone on its own port; the operator runs without one and registers the receiver's URL with
	// Stripe, storing the signing secret in the credentials Secret, where the receiver reads it.
	logDir := os.Getenv("CHAOS_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	} else if err := os.MkdirAll(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	hookAddr := testenv.FreeAddr(t)
	s.hookURL = "http://" + hookAddr + webhookreceiver.Path
	common := []string{"--kubeconfig", env.Kubeconfig, "--credentials-secret",
		operatorNS + "/" + credentials.DefaultSecretName, "--metrics-bind-address", "0"}
	s.operator = newProc("operator", bin, logDir, testenv.FreeAddr(t), append(common,
		"--stripe-api-base", s.simURL, "--stripe-test-rate", strconv.Itoa(stripeRate), "--cluster-name", cluster,
		"--max-concurrent-reconciles", "8", "--webhook-bind-address", "0", "--webhook-public-url", s.hookURL,
		// The verification reads every processed StripeEvent's payload and target: they are kept, not compacted
		// into the event ledger (controllers' TestEventCompactionSurvivesCrashes covers compaction across stops).
		"--event-compaction-delay", "1h")...)
	s.receiver = newProc("receiver", bin, logDir, testenv.FreeAddr(t), append(common,
		"--webhook-receiver-only", "--webhook-bind-address", hookAddr)...)
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, p := range []*proc{s.operator, s.receiver} {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop() }()
		}
		wg.Wait()
		if t.Failed() && os.Getenv("CHAOS_LOGS") == "" {
			t.Logf("operator log tail:\n%s", s.operator.tail(20))
			t.Logf("receiver log tail:\n%s", s.receiver.tail(10))
			t.Log("set CHAOS_LOGS=<directory> to keep the processes' logs")
		}
	})
	for _, p := range []*proc{s.operator, s.receiver} {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*proc{s.operator, s.receiver} {
		if err := p.waitReady(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	s.waitRegistered(ctx)

	loadStart := time.Now()
	applied := s.applyLoad(ctx)
	t.Logf("chaos: %d objects applied in %v", applied, time.Since(loadStart).Round(time.Millisecond))
	converged := s.runChaos(ctx, loadStart)
	t.Logf("chaos: converged %v after the load started", converged.Round(time.Millisecond))

	s.verify(ctx, converged, time.Since(s.started))
	if !t.Failed() {
		s.checkSchema()
	}
}

// checkSchema validates every response the simulator sent during the run, and every event it stored, against
// Stripe's 2023-10-16 OpenAPI specification (stripe-mock's), and fails with up to 20 of the violations.
func (s *suite) checkSchema() {
	t := s.t
	t.Helper()
	o, err := schemacheck.Load()
	if err != nil {
		t.Fatalf("loading the OpenAPI specification: %v", err)
	}
	events := s.sim.EventObjects()
	n, all := o.Validate(s.rec.Exchanges(), events)
	keys, counts := schemacheck.Distinct(all)
	t.Logf("chaos: schema conformance: %d responses and %d event objects, %d violations (%d distinct)", n,
		len(events), len(all), len(keys))
	for i, k := range keys {
		if i == 20 {
			t.Errorf("… and %d more", len(keys)-20)
			break
		}
		t.Errorf("violates Stripe's specification: %s (x%d)", k, counts[k])
	}
}

// waitRegistered waits until the operator has registered the receiver's endpoint and stored its secret.
func (s *suite) waitRegistered(ctx context.Context) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		sec := &corev1.Secret{}
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: credentials.DefaultSecretName},
			sec); err != nil {
			s.t.Fatal(err)
		}
		if strings.HasPrefix(string(sec.Data[webhookreceiver.SecretsField]), "whsec_") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("the operator did not register its webhook endpoint within a minute:\n%s", s.operator.tail(40))
}

func customerName(i int) string     { return fmt.Sprintf("tenant-%04d", i) }
func subscriptionName(i int) string { return fmt.Sprintf("tenant-%04d-pro", i) }
func couponName(i int) string       { return fmt.Sprintf("deal-%02d", i) }

// coupons is how many Coupons the load has: one per 50 tenants.
func (s *suite) coupons() int { return max(1, s.cfg.n/50) }

// objects is how many billing objects the load applies: the Product, the Price, the TaxRate, the Coupons, one
// PromotionCode, and a Customer and a Subscription per tenant.
func (s *suite) objects() int { return 2*s.cfg.n + 4 + s.coupons() }

// discountOf is the discount of tenant i's Subscription: every fourth redeems a Coupon, every eighth (from the
// second) the PromotionCode, so redemptions are counted under faults and kills.
func (s *suite) discountOf(i int) *billingv1.SubscriptionDiscount {
	switch i % 8 {
	case 0, 4:
		return &billingv1.SubscriptionDiscount{
			CouponRef: &billingv1.LocalObjectReference{Name: couponName(i / 4 % s.coupons())}}
	case 2:
		return &billingv1.SubscriptionDiscount{PromotionCodeRef: &billingv1.LocalObjectReference{Name: "launch"}}
	}
	return nil
}

// applyLoad creates the Product, the Price, the TaxRate, the Coupons and a PromotionCode, and N Customers each with
// its Subscription (taxed at the TaxRate), from 16 writers.
func (s *suite) applyLoad(ctx context.Context) int {
	s.t.Helper()
	objs := make(chan client.Object, s.objects())
	objs <- &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "pro-plan"},
		Spec: billingv1.ProductSpec{Name: "Pro plan", Description: "Everything, for the chaos suite"}}
	objs <- &billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "pro-monthly"},
		Spec: billingv1.PriceSpec{ProductRef: &billingv1.LocalObjectReference{Name: "pro-plan"}, Currency: "usd",
			UnitAmount: 2000, Recurring: &billingv1.Recurring{Interval: billingv1.IntervalMonth}}}
	for i := range s.coupons() {
		pct := intstr.FromInt32(10)
		objs <- &billingv1.Coupon{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: couponName(i)},
			Spec: billingv1.CouponSpec{Name: "Deal " + strconv.Itoa(i), PercentOff: &pct,
				Duration: billingv1.CouponForever}}
	}
	objs <- &billingv1.PromotionCode{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "launch"},
		Spec: billingv1.PromotionCodeSpec{CouponRef: &billingv1.LocalObjectReference{Name: couponName(0)},
			Code: "CHAOSLAUNCH"}}
	objs <- &billingv1.TaxRate{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "vat"},
		Spec: billingv1.TaxRateSpec{DisplayName: "VAT", Percentage: "19", Country: "DE", TaxType: "vat"}}
	for i := range s.cfg.n {
		objs <- &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: customerName(i)},
			Spec: billingv1.CustomerSpec{Email: fmt.Sprintf("billing@tenant-%04d.example", i),
				Name: fmt.Sprintf("Tenant %04d", i), DefaultPaymentMethod: "pm_card_visa",
				Metadata: billingv1.Metadata{"tenant": customerName(i)}}}
		objs <- &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: subscriptionName(i)},
			Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: customerName(i)},
				Items: []billingv1.SubscriptionItem{{PriceRef: &billingv1.LocalObjectReference{Name: "pro-monthly"},
					Quantity: ptr.To[int64](1)}},
				DefaultTaxRates: []billingv1.TaxRateReference{
					{TaxRateRef: &billingv1.LocalObjectReference{Name: "vat"}}},
				Metadata: billingv1.Metadata{"tenant": customerName(i)}, Discount: s.discountOf(i)}}
	}
	close(objs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range objs {
				var err error
				for attempt := range 5 {
					// A retry meeting AlreadyExists means an earlier attempt was stored after all.
					if err = s.c.Create(ctx, o); err == nil || (attempt > 0 && apierrors.IsAlreadyExists(err)) {
						err = nil
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil {
					s.t.Errorf("creating %s: %v", o.GetName(), err)
					continue
				}
				mu.Lock()
				applied++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
	return applied
}

// thresholds returns n kill points spread over [from, to], each moved by up to a quarter of the spacing.
func (s *suite) thresholds(n int, from, to float64) []float64 {
	out := make([]float64, n)
	step := (to - from) / float64(max(n-1, 1))
	for i := range out {
		out[i] = from + float64(i)*step + (s.rng.Float64()-0.5)*step/2
	}
	return out
}

// progress is how far the Stripe side has come, from the simulator alone (no load on the API server): half for
// the objects created in Stripe, half for the events delivered of those scheduled.
func (s *suite) progress() float64 {
	created := 0
	for _, byUID := range s.sim.ObjectsByUID() {
		created += len(byUID)
	}
	delivered := map[string]bool{}
	for _, d := range s.sim.Deliveries() {
		if d.Status >= 200 && d.Status < 300 {
			delivered[d.EventID] = true
		}
	}
	objects := float64(s.objects())
	// The events scheduled so far for the operator's endpoint, and at least one per Customer and Subscription pair
	// (its first invoice's).
	events := float64(max(len(s.sim.ScheduledEvents()), s.cfg.n))
	return 0.5*min(1, float64(created)/objects) + 0.5*min(1, float64(len(delivered))/events)
}

// runChaos kills the operator and the receiver at spread-out points of progress and restarts them, until every
// kill is done and everything converged. It returns the time from the start of the load to convergence.
func (s *suite) runChaos(ctx context.Context, loadStart time.Time) time.Duration {
	s.t.Helper()
	opAt := s.thresholds(operatorKills, 0.08, 0.80)
	rcvAt := s.thresholds(receiverKills, 0.30, 0.66)
	s.t.Logf("chaos: operator kills at progress %.2f, receiver kills at %.2f", opAt, rcvAt)
	deadline := loadStart.Add(s.cfg.timeout)
	var receiverUpAt time.Time
	lastCheck, lastReport := time.Time{}, time.Now()
	for {
		now := time.Now()
		if now.After(deadline) {
			s.t.Fatalf("not converged within %v of the load: %s", s.cfg.timeout, s.snapshot(ctx))
		}
		// A process that died on its own is a failure; it is restarted so the run can go on and say more.
		for _, p := range []*proc{s.operator, s.receiver} {
			if !p.running() && (p != s.receiver || receiverUpAt.IsZero()) {
				_, _, unexpected := p.counts()
				if len(unexpected) > 0 {
					s.t.Errorf("%s: %s\n%s", p.name, unexpected[len(unexpected)-1], p.tail(30))
				}
				if err := p.start(); err != nil {
					s.t.Fatal(err)
				}
			}
			p.ready(ctx)
		}
		progress := s.progress()
		_, opKilled, _ := s.operator.counts()
		_, rcvKilled, _ := s.receiver.counts()
		if opKilled < operatorKills && progress >= opAt[opKilled] &&
			s.operator.readyFor() > time.Duration(2000+s.rng.IntN(2000))*time.Millisecond {
			if err := s.operator.kill(); err != nil {
				s.t.Fatal(err)
			}
			s.t.Logf("chaos: %6.1fs SIGKILL operator (%d/%d) at progress %.2f (%s)", time.Since(loadStart).Seconds(),
				opKilled+1, operatorKills, progress, time.Now().Format("15:04:05.000"))
			time.Sleep(time.Duration(100+s.rng.IntN(900)) * time.Millisecond)
			if err := s.operator.start(); err != nil {
				s.t.Fatal(err)
			}
		}
		switch {
		case !receiverUpAt.IsZero() && now.After(receiverUpAt):
			if err := s.receiver.start(); err != nil {
				s.t.Fatal(err)
			}
			s.receiverDown[len(s.receiverDown)-1].to = time.Now()
			receiverUpAt = time.Time{}
		case receiverUpAt.IsZero() && rcvKilled < receiverKills && progress >= rcvAt[rcvKilled] &&
			s.receiver.readyFor() > 2*time.Second:
			if err := s.receiver.kill(); err != nil {
				s.t.Fatal(err)
			}
			down := time.Duration(1500+s.rng.IntN(1500)) * time.Millisecond
			s.t.Logf("chaos: %6.1fs SIGKILL receiver (%d/%d) at progress %.2f, down for %v",
				time.Since(loadStart).Seconds(), rcvKilled+1, receiverKills, progress, down)
			s.receiverDown = append(s.receiverDown, window{from: time.Now()})
			receiverUpAt = time.Now().Add(down)
		}
		if time.Since(lastReport) > 15*time.Second {
			s.t.Logf("chaos: %6.1fs progress %.2f", time.Since(loadStart).Seconds(), progress)
			lastReport = time.Now()
		}
		_, opKilled, _ = s.operator.counts()
		_, rcvKilled, _ = s.receiver.counts()
		if opKilled == operatorKills && rcvKilled == receiverKills && receiverUpAt.IsZero() &&
			time.Since(lastCheck) > 2*time.Second {
			lastCheck = time.Now()
			if s.converged(ctx) {
				return time.Since(loadStart)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// converged: both processes up, delivery idle, every object Ready, and every event owed to the endpoint stored
// and out of Pending.
func (s *suite) converged(ctx context.Context) bool {
	if !s.operator.running() || !s.receiver.running() ||
		s.sim.PendingDeliveries() != 0 || s.sim.InFlightDeliveries() != 0 {
		return false
	}
	w, err := s.readWorld(ctx)
	if err != nil {
		s.t.Logf("chaos: reading the cluster: %v", err)
		return false
	}
	if w.ready() != s.objects() {
		return false
	}
	stored := map[string]bool{}
	for _, e := range w.events {
		if e.Status.Phase == "" || e.Status.Phase == billingv1.EventPending {
			return false
		}
		stored[e.Spec.EventID] = true
	}
	for _, e := range s.sim.ScheduledEvents() {
		if !stored[e.EventID] {
			return false
		}
	}
	return true
}

// snapshot says where things stand, for a failure message.
func (s *suite) snapshot(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "progress %.2f; deliveries pending %d, in flight %d; ", s.progress(),
		s.sim.PendingDeliveries(), s.sim.InFlightDeliveries())
	w, err := s.readWorld(ctx)
	if err != nil {
		fmt.Fprintf(&b, "reading the cluster: %v", err)
		return b.String()
	}
	fmt.Fprintf(&b, "%d of %d objects Ready; ", w.ready(), s.objects())
	shown := 0
	for _, o := range w.all() {
		if c := meta.FindStatusCondition(o.GetStripeStatus().Conditions, billingv1.ConditionReady); (c == nil ||
			c.Status != metav1.ConditionTrue) && shown < 5 {
			shown++
			fmt.Fprintf(&b, "\n  %T %s not Ready: %+v", o, o.GetName(), c)
		}
	}
	phases := map[billingv1.StripeEventPhase]int{}
	for _, e := range w.events {
		phases[e.Status.Phase]++
	}
	fmt.Fprintf(&b, "\n  StripeEvents by phase %v, scheduled events %d", phases, len(s.sim.ScheduledEvents()))
	shown = 0
	for _, e := range w.events {
		if e.Status.Phase != billingv1.EventProcessed && shown < 5 {
			shown++
			fmt.Fprintf(&b, "\n  event %s %s %s: %s (attempts %d)", e.Spec.EventID, e.Spec.Type, e.Status.Phase,
				e.Status.Message, e.Status.Attempts)
		}
	}
	return b.String()
}
