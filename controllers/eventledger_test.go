package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// testClock is a clock a test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// restartManager replaces the suite's manager with one of these options until the test ends, then restores it.
func restartManager(t *testing.T, mods ...func(*Options)) {
	t.Helper()
	manager.stop()
	var err error
	if manager, err = startManager(mods...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		writeFault.Store(nil)
		manager.stop()
		var err error
		if manager, err = startManager(); err != nil {
			t.Fatal(err)
		}
	})
}

// compactAtOnce is the operator's default: processed events are compacted at once and recognised for 96 h.
func compactAtOnce(o *Options) {
	o.EventCompactionDelay, o.EventRetention = 0, 96*time.Hour
}

// subscriptionEvent is a StripeEvent as the receiver stores it, for a customer.subscription.updated event that
// puts the subscription in state.
func subscriptionEvent(ns, eventID string, sub *billingv1.Subscription, state string,
	created int64) *billingv1.StripeEvent {
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.subscription.updated","data":{"object":`+
		`{"id":%q,"object":"subscription","status":%q}}}`, eventID, sub.Status.ID, state)
	return &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: webhookreceiver.EventName(eventID)},
		Spec: billingv1.StripeEventSpec{EventID: eventID, Type: "customer.subscription.updated", Created: created,
			APIVersion: stripego.APIVersion, ObjectID: sub.Status.ID, ObjectType: "subscription", Payload: payload}}
}

// readySubscription creates a Customer, Product, Price and Subscription in ns and returns the Ready Subscription.
func readySubscription(t *testing.T, ctx context.Context, ns string) *billingv1.Subscription {
	t.Helper()
	sub := newSubscription(ns, "renewing", "renewing", "monthly")
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 900), newCustomer(ns, "renewing"), sub)
	return waitReady(t, ctx, sub)
}

// ledgerEntries reads every StripeEventLedger of ns: event ID to target, and the number of ledgers.
func ledgerEntries(ctx context.Context, ns string) (map[string]string, int, error) {
	l := &billingv1.StripeEventLedgerList{}
	if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
		return nil, 0, err
	}
	out := map[string]string{}
	for _, lg := range l.Items {
		for id, target := range lg.Events {
			if _, dup := out[id]; dup {
				return nil, 0, fmt.Errorf("event %s recorded twice", id)
			}
			out[id] = target
		}
	}
	return out, len(l.Items), nil
}

// waitCompacted waits until the StripeEvent is gone and the ledger records its event with the target.
func waitCompacted(t *testing.T, ctx context.Context, ev *billingv1.StripeEvent, target string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &billingv1.StripeEvent{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ev), got); !apierrors.IsNotFound(err) {
			return fmt.Errorf("StripeEvent still there (phase %q, %q): %w", got.Status.Phase, got.Status.Message, err)
		}
		entries, _, err := ledgerEntries(ctx, ev.Namespace)
		if err != nil {
			return err
		}
		if got, ok := entries[ev.Spec.EventID]; !ok || got != target {
			return fmt.Errorf("ledger entry of %s: %q (recorded %v), want %q", ev.Spec.EventID, got, ok, target)
		}
		return nil
	})
}

func subscriptionState(t *testing.T, ctx context.Context, sub *billingv1.Subscription) (string, string) {
	t.Helper()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
		t.Fatal(err)
	}
	return sub.Status.StripeState, sub.Status.LastEventID
}

// A processed event leaves only its ledger entry, and a redelivery of it stored 0, 1 and 3 days later (on the
// operator's clock) is recognised and deleted without being folded, though folding it would change status: two
// events of the same second, the later one folded last, so the fold rules alone would fold the earlier one again.
// After the retention (96 h from the end of the hour of processing) the ledger is collected.
func TestEventLedgerRecognisesRedeliveriesForTheRetention(t *testing.T) {
	clock := &testClock{t: time.Now()}
	start := clock.Now()
	restartManager(t, compactAtOnce, func(o *Options) { o.Now = clock.Now })
	ctx, ns := newNamespace(t)
	sub := readySubscription(t, ctx, ns)
	target := "Subscription/" + ns + "/" + sub.Name
	created := time.Now().Unix() + 3600

	first := subscriptionEvent(ns, "evt_renewalpastdue", sub, "past_due", created)
	create(t, first)
	waitCompacted(t, ctx, first, target)
	if state, last := subscriptionState(t, ctx, sub); state != "past_due" || last != first.Spec.EventID {
		t.Fatalf("after the first event: state %q, lastEventID %q", state, last)
	}
	second := subscriptionEvent(ns, "evt_renewalactive", sub, "active", created)
	create(t, second)
	waitCompacted(t, ctx, second, target)
	if state, last := subscriptionState(t, ctx, sub); state != "active" || last != second.Spec.EventID {
		t.Fatalf("after the second event: state %q, lastEventID %q", state, last)
	}

	for _, day := range []int{0, 1, 3} {
		clock.Set(start.Add(time.Duration(day) * 24 * time.Hour))
		before := testutil.ToFloat64(eventRedeliveries)
		again := subscriptionEvent(ns, first.Spec.EventID, sub, "past_due", created)
		create(t, again)
		waitGone(t, ctx, again)
		if got := testutil.ToFloat64(eventRedeliveries) - before; got != 1 {
			t.Errorf("day %d: %v redeliveries counted, want 1", day, got)
		}
		if state, last := subscriptionState(t, ctx, sub); state != "active" || last != second.Spec.EventID {
			t.Errorf("day %d: the redelivery was folded: state %q, lastEventID %q", day, state, last)
		}
	}

	clock.Set(start.Add(96*time.Hour + 2*time.Hour))
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, n, err := ledgerEntries(ctx, ns); err != nil || n != 0 {
			return fmt.Errorf("%d ledgers left after the retention (%w)", n, err)
		}
		return nil
	})
}

// No event is lost or folded twice whatever point of the path the operator stops at: stored but not processed (it
// is processed after the restart), folded but not recorded (there is no Processed mark without a compaction delay:
// it is Pending, is not folded again after the restart though status moved on, and is recorded and deleted), and
// recorded but not deleted (it is deleted after the restart, without a second fold).
func TestEventCompactionSurvivesCrashes(t *testing.T) {
	restartManager(t, compactAtOnce)
	ctx, ns := newNamespace(t)
	sub := readySubscription(t, ctx, ns)
	target := "Subscription/" + ns + "/" + sub.Name
	created := time.Now().Unix() + 3600
	crashed := errors.New("injected: the operator stopped here")
	isLedger := func(obj client.Object) bool { _, ok := obj.(*billingv1.StripeEventLedger); return ok }
	isEvent := func(obj client.Object) bool { _, ok := obj.(*billingv1.StripeEvent); return ok }
	restart := func(fault func(verb string, obj client.Object) error) {
		t.Helper()
		manager.stop()
		if fault == nil {
			writeFault.Store(nil)
		} else {
			writeFault.Store(&fault)
		}
		var err error
		if manager, err = startManager(compactAtOnce); err != nil {
			t.Fatal(err)
		}
	}
	phase := func(ev *billingv1.StripeEvent, want billingv1.StripeEventPhase) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ev), ev); err != nil {
				return err
			}
			if ev.Status.Phase != want {
				return fmt.Errorf("phase %q, want %q", ev.Status.Phase, want)
			}
			return nil
		})
	}

	// Stored, not processed: the operator is down when the receiver stores the event.
	manager.stop()
	stored := subscriptionEvent(ns, "evt_crashstored", sub, "past_due", created)
	create(t, stored)
	var err error
	if manager, err = startManager(compactAtOnce); err != nil {
		t.Fatal(err)
	}
	waitCompacted(t, ctx, stored, target)

	// Folded, not recorded: every ledger write fails, so the event stays with its payload, Pending.
	restart(func(_ string, obj client.Object) error {
		if isLedger(obj) {
			return crashed
		}
		return nil
	})
	unrecorded := subscriptionEvent(ns, "evt_crashunrecorded", sub, "unpaid", created+1)
	create(t, unrecorded)
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, last := subscriptionState(t, ctx, sub); last != unrecorded.Spec.EventID {
			return fmt.Errorf("not folded yet (lastEventID %q)", last)
		}
		return nil
	})
	time.Sleep(3 * ledgerFlushEvery) // a few ledger flushes fail
	if entries, _, err := ledgerEntries(ctx, ns); err != nil || entries[unrecorded.Spec.EventID] != "" {
		t.Fatalf("recorded although the ledger writes failed: %v %v", entries, err)
	}
	phase(unrecorded, "")
	// Status moves on meanwhile (a read of Stripe); a second fold of the event would undo it.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		sub.Status.StripeState = "active"
		return env.Client.Status().Update(ctx, sub)
	})
	restart(nil)
	waitCompacted(t, ctx, unrecorded, target)
	if state, last := subscriptionState(t, ctx, sub); state != "active" || last != unrecorded.Spec.EventID {
		t.Errorf("after the restart: state %q, lastEventID %q (folded again?)", state, last)
	}

	// Recorded, not deleted: the ledger has the event, its StripeEvent stays.
	restart(func(verb string, obj client.Object) error {
		if verb == "delete" && isEvent(obj) {
			return crashed
		}
		return nil
	})
	undeleted := subscriptionEvent(ns, "evt_crashundeleted", sub, "past_due", created+2)
	create(t, undeleted)
	testenv.Eventually(t, 30*time.Second, func() error {
		entries, _, err := ledgerEntries(ctx, ns)
		if err != nil || entries[undeleted.Spec.EventID] != target {
			return fmt.Errorf("not recorded yet: %w", err)
		}
		return nil
	})
	phase(undeleted, "") // no Processed mark without a compaction delay
	// Status moves on meanwhile (a read of Stripe); a second fold of the event would undo it.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		sub.Status.StripeState = "active"
		return env.Client.Status().Update(ctx, sub)
	})
	restart(nil)
	waitCompacted(t, ctx, undeleted, target)
	if state, last := subscriptionState(t, ctx, sub); state != "active" || last != undeleted.Spec.EventID {
		t.Errorf("after the restart: state %q, lastEventID %q (folded again?)", state, last)
	}
	entries, _, err := ledgerEntries(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*billingv1.StripeEvent{stored, unrecorded, undeleted} {
		if entries[ev.Spec.EventID] != target {
			t.Errorf("%s not in the ledger: %v", ev.Spec.EventID, entries)
		}
	}
}

// stateGauge reads one series of the state gauges the leading manager exports.
func stateGauge(t *testing.T, name string, labels prometheus.Labels) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(state)
	v, ok := testenv.SeriesSum(reg, name, labels)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

// During a burst the backlog gauges say what the API server holds: while the worker cannot finish events (they are
// folded, but recording them in the ledger fails), every stored event counts as Pending and the oldest one's age
// grows; once it can, the backlog drains to 0 and every event is recorded in the ledger and deleted.
func TestEventBacklogMetricsDuringABurst(t *testing.T) {
	restartManager(t, compactAtOnce)
	ctx, ns := newNamespace(t)
	sub := readySubscription(t, ctx, ns)
	basePending := stateGauge(t, "stripe_operator_stripeevents", prometheus.Labels{"phase": "Pending"})
	held := errors.New("injected: the worker cannot write")
	fault := func(_ string, obj client.Object) error {
		if lg, ok := obj.(*billingv1.StripeEventLedger); ok && lg.Namespace == ns {
			return held
		}
		return nil
	}
	writeFault.Store(&fault)
	const burst = 40
	created := time.Now().Unix() + 3600
	events := make([]*billingv1.StripeEvent, 0, burst)
	for i := range burst {
		ev := subscriptionEvent(ns, fmt.Sprintf("evt_burst%03d", i), sub, "active", created+int64(i))
		create(t, ev)
		events = append(events, ev)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stateGauge(t, "stripe_operator_stripeevents", prometheus.Labels{"phase": "Pending"}) -
			basePending; got != burst {
			return fmt.Errorf("Pending gauge %v above the baseline, want %d", got, burst)
		}
		if age := stateGauge(t, "stripe_operator_stripeevents_oldest_pending_seconds", nil); age < 1 {
			return fmt.Errorf("oldest pending %v s", age)
		}
		return nil
	})
	compacted := testutil.ToFloat64(eventsCompacted)
	writeFault.Store(nil)
	testenv.Eventually(t, time.Minute, func() error {
		if got := stateGauge(t, "stripe_operator_stripeevents", prometheus.Labels{"phase": "Pending"}) -
			basePending; got != 0 {
			return fmt.Errorf("Pending gauge %v above the baseline after the burst", got)
		}
		l := &billingv1.StripeEventList{}
		if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil || len(l.Items) != 0 {
			return fmt.Errorf("%d StripeEvents left (%w)", len(l.Items), err)
		}
		return nil
	})
	entries, _, err := ledgerEntries(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if _, ok := entries[ev.Spec.EventID]; !ok {
			t.Errorf("%s not recorded", ev.Spec.EventID)
		}
	}
	if got := testutil.ToFloat64(eventsCompacted) - compacted; got != burst {
		t.Errorf("compacted counter moved by %v, want %d", got, burst)
	}
}

// The ledger splits an hour's events over ledgers of at most MaxLedgerEntries, and stays exact when someone else
// (a former leader) wrote a ledger behind its back: its write conflicts, it reads the ledgers again, and nothing is
// lost or recorded twice. After the retention from the end of their hour, the ledgers are collected.
func TestEventLedgerSplitsAndRecoversFromAnotherWriter(t *testing.T) {
	ctx, ns := newNamespace(t)
	clock := &testClock{t: time.Date(2026, 11, 29, 13, 10, 0, 0, time.UTC)}
	entry := func(i int) ledgerEntry {
		return ledgerEntry{namespace: ns, eventID: fmt.Sprintf("evt_split%04d", i), name: fmt.Sprintf("e%d", i),
			target: "Subscription/" + ns + "/s"}
	}
	leader := newEventLedger(env.Client, env.Client, clock.Now, 96*time.Hour, nil)
	n := billingv1.MaxLedgerEntries + 20
	for i := range n {
		leader.Add(entry(i))
	}
	if err := leader.flush(ctx); err != nil {
		t.Fatal(err)
	}
	l := &billingv1.StripeEventLedgerList{}
	if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, lg := range l.Items {
		sizes[lg.Name] = len(lg.Events)
	}
	if want := map[string]int{"ledger-20261129-13-0": billingv1.MaxLedgerEntries,
		"ledger-20261129-13-1": 20}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("ledgers %v, want %v", sizes, want)
	}

	former := newEventLedger(env.Client, env.Client, clock.Now, 96*time.Hour, nil)
	former.Add(entry(n))
	if err := former.flush(ctx); err != nil {
		t.Fatal(err)
	}
	leader.Add(entry(n + 1))
	if err := leader.flush(ctx); err == nil || !strings.Contains(err.Error(), "changed since it was read") {
		t.Fatalf("a write over another writer's: %v, want a conflict", err)
	}
	if err := leader.flush(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _, err := ledgerEntries(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n+2 {
		t.Errorf("%d events recorded, want %d", len(entries), n+2)
	}
	for _, i := range []int{0, n - 1, n, n + 1} {
		if ok, err := leader.Recorded(ctx, ns, entry(i).eventID); err != nil || !ok {
			t.Errorf("%s: recorded %v (%v)", entry(i).eventID, ok, err)
		}
	}

	clock.Set(clock.Now().Add(time.Hour + 96*time.Hour))
	if err := leader.collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, left, err := ledgerEntries(ctx, ns); err != nil || left != 0 {
		t.Errorf("%d ledgers left after the retention (%v)", left, err)
	}
	if ok, err := leader.Recorded(ctx, ns, entry(0).eventID); err != nil || ok {
		t.Errorf("recognised after the retention: %v (%v)", ok, err)
	}
}
