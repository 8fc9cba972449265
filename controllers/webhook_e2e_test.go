package controllers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// withWebhooks registers a webhook endpoint on the simulator for the event types the receiver stores (those the
// operator registers for, and the later ones a Dashboard endpoint may add), which delivers, over HTTP, to a receiver
// storing StripeEvents in the real API server; the running manager's worker folds them into status. Deliveries are
// shuffled and some duplicated. While the returned switch is set, the receiver is down (503).
func withWebhooks(t *testing.T) *atomic.Bool {
	t.Helper()
	return withWebhookEvents(t, append(slices.Clone(webhookreceiver.HandledTypes), webhookreceiver.LaterTypes...)...)
}

// withWebhookEvents is withWebhooks for an endpoint enabled for the given event types only.
func withWebhookEvents(t *testing.T, types ...string) *atomic.Bool {
	t.Helper()
	var secret string
	down := &atomic.Bool{}
	h := &webhookreceiver.Handler{Client: env.Client, Namespace: operatorNamespace, Log: logr.Discard(),
		Secrets: func(context.Context) ([]string, error) { return []string{secret}, nil }}
	mux := (&webhookreceiver.Server{Handler: h}).Mux()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ep, err := simClient().API.WebhookEndpoints.New(&stripego.WebhookEndpointParams{
		URL: stripego.String(srv.URL + webhookreceiver.Path), EnabledEvents: stripego.StringSlice(types),
		APIVersion: stripego.String(stripego.APIVersion)})
	if err != nil {
		t.Fatal(err)
	}
	secret = ep.Secret
	sim.SetWebhookOptions(stripesim.WebhookOptions{RetrySchedule: []time.Duration{50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, ShuffleWindow: 100 * time.Millisecond,
		DuplicateFraction: 0.3, Timeout: 5 * time.Second})
	t.Cleanup(func() { _, _ = simClient().API.WebhookEndpoints.Del(ep.ID, nil) })
	return down
}

// clockCustomer is a test clock and a Customer on it (its subscriptions follow the clock).
func clockCustomer(t *testing.T, ns, name string) (*stripego.TestHelpersTestClock, *billingv1.Customer) {
	t.Helper()
	clock, err := simClient().API.TestHelpersTestClocks.New(&stripego.TestHelpersTestClockParams{
		FrozenTime: stripego.Int64(1_700_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	cus := newCustomer(ns, name)
	cus.Spec.TestClock = clock.ID
	return clock, cus
}

func count503() int {
	n := 0
	for _, d := range sim.Deliveries() {
		if d.Status == http.StatusServiceUnavailable {
			n++
		}
	}
	return n
}

func TestWebhookDriftIsUndone(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "drifting")
	create(t, cus)
	cus = waitReady(t, ctx, cus)
	// Someone edits the customer "in the Dashboard", twice the same way: the second restore must not replay the
	// first one's idempotency key (Stripe would answer with the saved response and change nothing).
	for i := range 2 {
		if _, err := simClient().API.Customers.Update(cus.Status.ID,
			&stripego.CustomerParams{Name: stripego.String("Edited by hand")}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			if got := stripeCustomer(t, cus.Status.ID); got.Name != cus.Spec.Name {
				return fmt.Errorf("edit %d: Stripe still has name %q", i+1, got.Name)
			}
			return nil
		})
	}
	assertEvent(t, ns, cus.Name, "Warning", "DriftDetected")
}

func TestWebhookDeletedInStripe(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "removed")
	create(t, cus)
	cus = waitReady(t, ctx, cus)
	if _, err := simClient().API.Customers.Del(cus.Status.ID, nil); err != nil {
		t.Fatal(err)
	}
	// No resync or annotation: the customer.deleted event alone stalls it.
	waitReason(t, ctx, cus, billingv1.ReasonDeletedInStripe)
}

// A subscription lifecycle driven by a test clock: active, a renewal fails (past_due, PaymentFailed), the payment
// method is fixed, the retry pays (active, PaymentFailed false), then it is canceled. The CR's status follows the
// simulator's state through webhooks, each event taking effect once.
func TestWebhookSubscriptionLifecycle(t *testing.T) {
	down := withWebhooks(t)
	ctx, ns := newNamespace(t)
	sc := simClient()
	clock, cus := clockCustomer(t, ns, "payer")
	sub := newSubscription(ns, "plan-sub", "payer", "monthly")
	sub.Spec.TrialPeriodDays = ptr.To[int64](7)
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 4200), cus, sub)
	sub = waitReady(t, ctx, sub)
	cus = waitReady(t, ctx, cus)
	if sub.Status.StripeState != "trialing" {
		t.Fatalf("new subscription: %s", sub.Status.StripeState)
	}
	advance := func(to int64) {
		t.Helper()
		if _, err := sc.API.TestHelpersTestClocks.Advance(clock.ID, &stripego.TestHelpersTestClockAdvanceParams{
			FrozenTime: stripego.Int64(to)}); err != nil {
			t.Fatal(err)
		}
	}
	setCard := func(pm string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
				return err
			}
			cus.Spec.DefaultPaymentMethod = pm
			return env.Client.Update(ctx, cus)
		})
		waitReady(t, ctx, cus)
	}
	waitSub := func(state string, paymentFailed bool) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
				return err
			}
			failed := meta.IsStatusConditionTrue(sub.Status.Conditions, billingv1.ConditionPaymentFailed)
			if sub.Status.StripeState != state || failed != paymentFailed {
				return fmt.Errorf("status %s PaymentFailed=%v, want %s %v", sub.Status.StripeState, failed, state,
					paymentFailed)
			}
			return nil
		})
	}

	// The trial ends and the first invoice is paid.
	advance(sub.Status.CurrentPeriodEnd.Unix() + 3600)
	waitSub("active", false)

	setCard("pm_card_chargeDeclinedInsufficientFunds")
	periodEnd := sub.Status.CurrentPeriodEnd.Unix()
	// The receiver is down while the renewal fails: Stripe's retries bring the events later.
	failedBefore := count503()
	down.Store(true)
	advance(periodEnd + 3600)
	time.Sleep(300 * time.Millisecond)
	down.Store(false)
	waitSub("past_due", true)
	if count503() == failedBefore {
		t.Error("no delivery met the receiver while it was down")
	}
	c := meta.FindStatusCondition(sub.Status.Conditions, billingv1.ConditionPaymentFailed)
	if !strings.Contains(c.Message, sub.Status.LatestInvoice.ID) || !strings.Contains(c.Message, "insufficient funds") ||
		sub.Status.LatestInvoice.Status != "open" {
		t.Errorf("PaymentFailed %q, latest invoice %+v", c.Message, sub.Status.LatestInvoice)
	}
	assertEvent(t, ns, sub.Name, "Warning", billingv1.ReasonPaymentFailed)

	setCard("pm_card_visa")
	advance(periodEnd + 3*86400)
	waitSub("active", false)
	if sub.Status.LatestInvoice.Status != "paid" {
		t.Errorf("latest invoice %+v", sub.Status.LatestInvoice)
	}

	// Canceled at the period end: customer.subscription.deleted shows it canceled.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		sub.Spec.CancelAtPeriodEnd = true
		return env.Client.Update(ctx, sub)
	})
	sub = waitReady(t, ctx, sub)
	advance(sub.Status.CurrentPeriodEnd.Unix() + 3600)
	waitSub("canceled", false)

	// The final status equals the simulator's.
	got := stripeSubscription(t, sub.Status.ID)
	if string(got.Status) != sub.Status.StripeState || got.CurrentPeriodEnd != sub.Status.CurrentPeriodEnd.Unix() {
		t.Errorf("status %s/%v, simulator %s/%d", sub.Status.StripeState, sub.Status.CurrentPeriodEnd, got.Status,
			got.CurrentPeriodEnd)
	}
	// Every event was stored once, however often it was delivered, and every one was processed.
	testenv.Eventually(t, 30*time.Second, func() error {
		l := &billingv1.StripeEventList{}
		if err := env.Client.List(ctx, l, client.InNamespace(operatorNamespace)); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range l.Items {
			if seen[e.Spec.EventID] {
				return fmt.Errorf("event %s stored twice", e.Spec.EventID)
			}
			seen[e.Spec.EventID] = true
			if e.Status.Phase == billingv1.EventPending {
				return fmt.Errorf("event %s (%s) still pending", e.Spec.EventID, e.Spec.Type)
			}
		}
		return nil
	})
}

// The worker's own rules (the suite's manager keeps events 5 s and retries routing every 20 ms × attempt²): an event
// for an object that never appears is Unroutable after its retries, then collected after the retention; a payload of
// another API version is not trusted (the object is re-read instead).
func TestEventWorkerRoutingRetentionAndVersions(t *testing.T) {
	ctx, ns := newNamespace(t)
	mk := func(name, payload, version, objectID string) *billingv1.StripeEvent {
		e := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: billingv1.StripeEventSpec{EventID: "evt_" + name, Type: "customer.subscription.updated",
				Created: 1_700_000_000, APIVersion: version, ObjectID: objectID, ObjectType: "subscription",
				Payload: payload}}
		if err := env.Client.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	waitPhase := func(e *billingv1.StripeEvent, phase billingv1.StripeEventPhase) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(e), e); err != nil {
				return err
			}
			if e.Status.Phase != phase {
				return fmt.Errorf("phase %q: %+v", e.Status.Phase, e.Status)
			}
			return nil
		})
	}

	lost := mk("lost", "", "", "sub_nobody")
	waitPhase(lost, billingv1.EventUnroutable)
	if lost.Status.Attempts != maxRouteAttempts || !strings.Contains(lost.Status.Message, "sub_nobody") {
		t.Errorf("unroutable: %+v", lost.Status)
	}
	waitGone(t, ctx, lost) // collected after the retention

	// Another API version: routed by Stripe ID, not folded; the object is marked for a re-read.
	cus := newCustomer(ns, "versioned")
	sub := newSubscription(ns, "versioned", "versioned", "monthly")
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 300), cus, sub)
	sub = waitReady(t, ctx, sub)
	payload := fmt.Sprintf(`{"id":"evt_old","object":"event","data":{"object":{"id":%q,"object":"subscription",`+
		`"status":"past_due"}}}`, sub.Status.ID)
	old := mk("old-version", payload, "2020-08-27", sub.Status.ID)
	waitPhase(old, billingv1.EventProcessed)
	if !strings.HasPrefix(old.Status.Message, "re-read from Stripe") || old.Status.Target == nil || old.Status.Target.Name != sub.Name {
		t.Errorf("another API version: %+v", old.Status)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
		t.Fatal(err)
	}
	if sub.Status.StripeState == "past_due" {
		t.Error("the payload of another API version was folded into status")
	}
}

// The worker's own status writes do not re-queue an event (routing retries keep their pace); an Unroutable event is
// tried again when a billing object gets the Stripe ID it names; an event whose fold is already in status (the
// worker stopped before marking it Processed) is not folded again.
func TestEventWorkerPacingRerouteAndRefold(t *testing.T) {
	ctx, ns := newNamespace(t)
	store := func(name, typ, objectType, objectID, payload string, created int64) *billingv1.StripeEvent {
		t.Helper()
		e := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: billingv1.StripeEventSpec{EventID: "evt_" + strings.ReplaceAll(name, "-", ""), Type: typ,
				Created: created, APIVersion: stripego.APIVersion, ObjectID: objectID, ObjectType: objectType,
				Payload: payload}}
		if err := env.Client.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	phaseWithin := func(e *billingv1.StripeEvent, want billingv1.StripeEventPhase, d time.Duration) {
		t.Helper()
		testenv.Eventually(t, d, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(e), e); err != nil {
				return err
			}
			if e.Status.Phase != want {
				return fmt.Errorf("phase %q, want %q: %+v", e.Status.Phase, want, e.Status)
			}
			return nil
		})
	}
	phase := func(e *billingv1.StripeEvent, want billingv1.StripeEventPhase) { phaseWithin(e, want, 30*time.Second) }

	// Pacing: the suite retries routing after 20 ms × attempt², about 1.1 s in all; without pacing, each status write
	// re-queued the event at once and the six attempts were spent in a few milliseconds.
	paced := store("paced", "customer.subscription.updated", "subscription", "sub_nobodyyet", "", 1_700_000_000)
	time.Sleep(250 * time.Millisecond)
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(paced), paced); err != nil {
		t.Fatal(err)
	}
	if paced.Status.Phase == billingv1.EventUnroutable || paced.Status.Attempts >= maxRouteAttempts {
		t.Errorf("routing retries were not paced: after 250 ms %+v", paced.Status)
	}

	// Re-route: an invoice event for a Stripe subscription no Subscription has yet goes Unroutable, then is processed
	// once a Subscription adopting that ID records it.
	cus := newCustomer(ns, "adopter")
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 700), cus)
	cus = waitReady(t, ctx, cus)
	price := waitReady(t, ctx, newPrice(ns, "monthly", 700))
	existing, err := simClient().API.Subscriptions.New(&stripego.SubscriptionParams{
		Customer: stripego.String(cus.Status.ID),
		Items:    []*stripego.SubscriptionItemsParams{{Price: stripego.String(price.Status.ID), Quantity: stripego.Int64(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	invoice := fmt.Sprintf(`{"id":"evt_late","object":"event","data":{"object":{"id":"in_late","object":"invoice",`+
		`"subscription":%q,"status":"paid","amount_due":700,"currency":"usd"}}}`, existing.ID)
	late := store("late", "invoice.paid", "invoice", "in_late", invoice, 1_700_000_100)
	phase(late, billingv1.EventUnroutable)
	sub := newSubscription(ns, "adopted", "adopter", "monthly")
	sub.Spec.Adopt = &billingv1.SubscriptionAdopt{ID: existing.ID}
	create(t, sub)
	waitReady(t, ctx, sub)
	// At once, by the watch on the Subscription, not by the retention timer (5 s in this suite).
	phaseWithin(late, billingv1.EventProcessed, 2*time.Second)
	if late.Status.Target == nil || late.Status.Target.Name != "adopted" {
		t.Errorf("re-routed event: %+v", late.Status)
	}

	// Refold: a second copy of an event already folded (lastEventID names it) is not applied again.
	update := fmt.Sprintf(`{"id":"evt_once","object":"event","data":{"object":{"id":%q,"object":"subscription",`+
		`"status":"past_due","customer":%q}}}`, existing.ID, cus.Status.ID)
	first := store("once", "customer.subscription.updated", "subscription", existing.ID, update, 1_700_000_200)
	phase(first, billingv1.EventProcessed)
	// The status moves on (as a reconcile reading Stripe would), then the same event is worked again.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		if sub.Status.LastEventID != first.Spec.EventID {
			return fmt.Errorf("lastEventID %q", sub.Status.LastEventID)
		}
		sub.Status.StripeState = "active"
		return env.Client.Status().Update(ctx, sub)
	})
	again := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "once-again"},
		Spec: first.Spec}
	if err := env.Client.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	phase(again, billingv1.EventProcessed)
	if again.Status.Message != "already folded into status" {
		t.Errorf("the event was folded again: %+v", again.Status)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
		t.Fatal(err)
	}
	if sub.Status.StripeState != "active" {
		t.Errorf("status %q: the old payload was folded over a newer read", sub.Status.StripeState)
	}
}
