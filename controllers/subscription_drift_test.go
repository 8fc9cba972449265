package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// driftFixture is a Ready subscription on the price "monthly" (quantity 1) with a second price, "premium", that the
// spec does not use, as a customer upgrading in the customer portal would pick.
type driftFixture struct {
	ctx     context.Context
	ns      string
	sub     *billingv1.Subscription
	premium string
}

func newDriftFixture(t *testing.T, policy billingv1.ChangesInStripe) driftFixture {
	t.Helper()
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "portal-sub", "tenant", "monthly")
	sub.Spec.ChangesInStripe = policy
	premium := newPrice(ns, "premium", 9900)
	create(t, newCustomer(ns, "tenant"), newProduct(ns, "plan"), newPrice(ns, "monthly", 4200), premium, sub)
	sub = waitReady(t, ctx, sub)
	premium = waitReady(t, ctx, premium)
	return driftFixture{ctx: ctx, ns: ns, sub: sub, premium: premium.Status.ID}
}

// changeInStripe changes the subscription's only item as a person in the customer portal or the Dashboard would:
// with Stripe's API, without the operator's idempotency keys.
func (f driftFixture) changeInStripe(t *testing.T, price string, quantity int64) {
	t.Helper()
	cur := stripeSubscription(t, f.sub.Status.ID)
	if _, err := simClient().API.Subscriptions.Update(f.sub.Status.ID, &stripego.SubscriptionParams{
		Items: []*stripego.SubscriptionItemsParams{{ID: stripego.String(cur.Items.Data[0].ID),
			Price: stripego.String(price), Quantity: stripego.Int64(quantity)}}}); err != nil {
		t.Fatal(err)
	}
}

// stripeItems renders the Stripe subscription's items as price×quantity.
func stripeItems(t *testing.T, id string) string {
	t.Helper()
	items := stripeSubscription(t, id).Items.Data
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, fmt.Sprintf("%s×%d", it.Price.ID, it.Quantity))
	}
	return strings.Join(out, ",")
}

// statusItems renders status.items the same way.
func statusItems(sub *billingv1.Subscription) string {
	out := make([]string, 0, len(sub.Status.Items))
	for _, it := range sub.Status.Items {
		out = append(out, fmt.Sprintf("%s×%d", it.PriceID, it.Quantity))
	}
	return strings.Join(out, ",")
}

// subscriptionWrites counts the simulator's answered updates of subscriptions.
func subscriptionWrites() int64 { return calls("POST /v1/subscriptions/{id}") }

// eventsFor lists the Kubernetes Events of one object with a reason.
func eventsFor(t *testing.T, ns, name, reason string) []corev1.Event {
	t.Helper()
	l := &corev1.EventList{}
	if err := env.Client.List(t.Context(), l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range l.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// Restore: a price and quantity change made in Stripe is undone after its event, with one update and one
// DriftDetected Event; the same change made again within the drift-loop window is not undone again (DriftLoop),
// until the spec changes.
func TestSubscriptionChangedInStripeIsRestored(t *testing.T) {
	f := newDriftFixture(t, "") // the default: Restore
	if f.sub.Spec.ChangesInStripe != billingv1.ChangesRestore {
		t.Fatalf("changesInStripe defaults to %q", f.sub.Spec.ChangesInStripe)
	}
	want := stripeItems(t, f.sub.Status.ID)
	before := subscriptionWrites()
	start := time.Now()
	f.changeInStripe(t, f.premium, 3)
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripeItems(t, f.sub.Status.ID); got != want {
			return fmt.Errorf("Stripe has %s, the spec says %s", got, want)
		}
		return nil
	})
	t.Logf("restored %v after the change in Stripe", time.Since(start).Round(time.Millisecond))
	// The operator's own update raises an event too: once it is folded, nothing more is written.
	testenv.Eventually(t, 30*time.Second, func() error {
		sub := &billingv1.Subscription{}
		if err := env.Client.Get(f.ctx, client.ObjectKeyFromObject(f.sub), sub); err != nil {
			return err
		}
		if statusItems(sub) != want || len(sub.Status.DriftRestores) != 1 {
			return fmt.Errorf("status items %s, restores %+v", statusItems(sub), sub.Status.DriftRestores)
		}
		if !meta.IsStatusConditionTrue(sub.Status.Conditions, billingv1.ConditionReady) {
			return fmt.Errorf("not Ready: %+v", sub.Status.Conditions)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if n := subscriptionWrites() - before; n != 2 {
		t.Errorf("%d subscription updates: want 2 (the change in Stripe and one restore)", n)
	}
	if evs := eventsFor(t, f.ns, f.sub.Name, reasonDriftDetected); len(evs) != 1 || evs[0].Type != "Warning" ||
		!strings.Contains(evs[0].Message, "items") {
		t.Errorf("DriftDetected events: %+v", evs)
	}

	// The portal changes it again, within the window: not restored, Stalled with DriftLoop.
	before = subscriptionWrites()
	f.changeInStripe(t, f.premium, 5)
	cond := waitReason(t, f.ctx, f.sub, billingv1.ReasonDriftLoop)
	if !strings.Contains(cond.Message, "items") {
		t.Errorf("DriftLoop message: %s", cond.Message)
	}
	if !meta.IsStatusConditionTrue(f.sub.Status.Conditions, billingv1.ConditionStalled) {
		t.Errorf("not Stalled: %+v", f.sub.Status.Conditions)
	}
	time.Sleep(2 * time.Second)
	looping := fmt.Sprintf("%s×5", f.premium)
	if got := stripeItems(t, f.sub.Status.ID); got != looping {
		t.Errorf("the looping change was undone: Stripe has %s", got)
	}
	if n := subscriptionWrites() - before; n != 1 {
		t.Errorf("%d subscription updates after the second change: want 1 (the change in Stripe only)", n)
	}

	// A person decides: the spec takes quantity 2 on the monthly price, which is applied.
	patch := client.MergeFrom(f.sub.DeepCopy())
	f.sub.Spec.Items[0].Quantity = ptr.To[int64](2)
	if err := env.Client.Patch(f.ctx, f.sub, patch); err != nil {
		t.Fatal(err)
	}
	sub := waitReady(t, f.ctx, f.sub)
	monthly := strings.Split(want, "×")[0]
	if got := stripeItems(t, sub.Status.ID); got != monthly+"×2" {
		t.Errorf("after the spec edit Stripe has %s", got)
	}
	for _, r := range sub.Status.DriftRestores {
		if r.Loop {
			t.Errorf("the loop is still recorded after the spec edit: %+v", sub.Status.DriftRestores)
		}
	}
}

// Follow: the change made in Stripe stands, at a forced resync too; status shows Stripe's items and SpecDiverged
// says so; a later edit of the spec is applied and clears it.
func TestSubscriptionChangedInStripeIsFollowed(t *testing.T) {
	f := newDriftFixture(t, billingv1.ChangesFollow)
	if c := meta.FindStatusCondition(f.sub.Status.Conditions, billingv1.ConditionSpecDiverged); c == nil ||
		c.Status != metav1.ConditionFalse {
		t.Errorf("SpecDiverged of a new subscription: %+v", c)
	}
	before := subscriptionWrites()
	f.changeInStripe(t, f.premium, 3)
	if _, err := simClient().API.Subscriptions.Update(f.sub.Status.ID,
		&stripego.SubscriptionParams{CancelAtPeriodEnd: stripego.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	stripeSide := stripeItems(t, f.sub.Status.ID)
	var sub *billingv1.Subscription
	diverged := func() error {
		sub = &billingv1.Subscription{}
		if err := env.Client.Get(f.ctx, client.ObjectKeyFromObject(f.sub), sub); err != nil {
			return err
		}
		c := meta.FindStatusCondition(sub.Status.Conditions, billingv1.ConditionSpecDiverged)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "items") ||
			!strings.Contains(c.Message, "cancelAtPeriodEnd") {
			return fmt.Errorf("SpecDiverged: %+v", c)
		}
		if statusItems(sub) != stripeSide || !sub.Status.CancelAtPeriodEnd {
			return fmt.Errorf("status items %s (Stripe %s), cancelAtPeriodEnd %v", statusItems(sub), stripeSide,
				sub.Status.CancelAtPeriodEnd)
		}
		if !meta.IsStatusConditionTrue(sub.Status.Conditions, billingv1.ConditionReady) {
			return fmt.Errorf("not Ready: %+v", sub.Status.Conditions)
		}
		return nil
	}
	testenv.Eventually(t, 30*time.Second, diverged)
	if len(eventsFor(t, f.ns, f.sub.Name, billingv1.ReasonChangedInStripe)) == 0 {
		t.Error("no ChangedInStripe Event")
	}
	if evs := eventsFor(t, f.ns, f.sub.Name, reasonDriftDetected); len(evs) != 0 {
		t.Errorf("DriftDetected under Follow: %+v", evs)
	}

	// A forced resync reads Stripe and writes nothing to it.
	reads := calls("GET /v1/subscriptions/{id}")
	patch := client.MergeFrom(sub.DeepCopy())
	sub.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: "forced"}
	if err := env.Client.Patch(f.ctx, sub, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := diverged(); err != nil {
			return err
		}
		if sub.Status.LastHandledReconcileAt != "forced" { // set by a pass that read Stripe
			return fmt.Errorf("resync not handled yet (%q)", sub.Status.LastHandledReconcileAt)
		}
		return nil
	})
	if calls("GET /v1/subscriptions/{id}") == reads {
		t.Error("the forced resync did not read Stripe")
	}
	if got := stripeItems(t, f.sub.Status.ID); got != stripeSide {
		t.Errorf("the resync changed Stripe's items to %s", got)
	}
	if n := subscriptionWrites() - before; n != 2 {
		t.Errorf("%d subscription updates: want 2 (the test's own changes in Stripe)", n)
	}

	// The person edits the spec afterwards: the items are applied, cancelAtPeriodEnd stays Stripe's.
	patch = client.MergeFrom(sub.DeepCopy())
	sub.Spec.Items[0].Quantity = ptr.To[int64](4)
	if err := env.Client.Patch(f.ctx, sub, patch); err != nil {
		t.Fatal(err)
	}
	waitSpecDiverged(t, f.ctx, sub, func(c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue && !strings.Contains(c.Message, "items")
	})
	items := stripeSubscription(t, sub.Status.ID).Items.Data
	if len(items) != 1 || items[0].Price.ID == f.premium || items[0].Quantity != 4 {
		t.Errorf("after the spec edit Stripe has %s", stripeItems(t, sub.Status.ID))
	}
	if !stripeSubscription(t, sub.Status.ID).CancelAtPeriodEnd {
		t.Error("cancelAtPeriodEnd, changed in Stripe and not edited in the spec, was reverted")
	}

	// Spec and Stripe agree again when the spec takes Stripe's cancelAtPeriodEnd: SpecDiverged False.
	patch = client.MergeFrom(sub.DeepCopy())
	sub.Spec.CancelAtPeriodEnd = true
	if err := env.Client.Patch(f.ctx, sub, patch); err != nil {
		t.Fatal(err)
	}
	waitSpecDiverged(t, f.ctx, sub, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionFalse })
}

// waitSpecDiverged waits until sub's SpecDiverged condition, for its current generation, satisfies ok.
func waitSpecDiverged(t *testing.T, ctx context.Context, sub *billingv1.Subscription, ok func(*metav1.Condition) bool) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		got := &billingv1.Subscription{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, billingv1.ConditionSpecDiverged)
		if c == nil || c.ObservedGeneration != got.Generation || !ok(c) {
			return fmt.Errorf("SpecDiverged: %+v", c)
		}
		return nil
	})
}

func TestPlanDrift(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	sub := &billingv1.Subscription{Spec: billingv1.SubscriptionSpec{Metadata: billingv1.Metadata{"a": "b"},
		Items: []billingv1.SubscriptionItem{{PriceID: "price_1", Quantity: ptr.To[int64](1)}}}}
	changed := map[string]string{"quantity.si_1": "1", "metadata.a": "c->b", "price.si_2": "price_0->price_1"}
	// Never applied: every difference is the spec's, applied.
	if p := planDrift(sub, changed, now, time.Minute); len(p.restore)+len(p.follow)+len(p.loop) != 0 {
		t.Fatalf("first plan: %+v", p)
	}
	recordApplied(sub, driftPlan{}, now, time.Minute)
	// Applied and unchanged in the spec: changed in Stripe, restored (a rolled price's migration is not drift).
	p := planDrift(sub, changed, now, time.Minute)
	if !slices.Equal(p.restore, []string{groupItems, groupMetadata}) || len(p.loop) != 0 {
		t.Fatalf("restore plan: %+v", p)
	}
	recordApplied(sub, p, now, time.Minute)
	// Again within the window: a loop; after it: restored again.
	if p := planDrift(sub, changed, now.Add(30*time.Second), time.Minute); !slices.Equal(p.loop, []string{groupItems,
		groupMetadata}) {
		t.Fatalf("loop plan: %+v", p)
	}
	if p := planDrift(sub, changed, now.Add(2*time.Minute), time.Minute); len(p.restore) != 2 {
		t.Fatalf("plan after the window: %+v", p)
	}
	// Follow keeps items and restores metadata; an edit of the items in the spec is applied.
	sub.Spec.ChangesInStripe = billingv1.ChangesFollow
	if p := planDrift(sub, changed, now.Add(2*time.Minute), time.Minute); !slices.Equal(p.follow,
		[]string{groupItems}) || !slices.Equal(p.restore, []string{groupMetadata}) {
		t.Fatalf("follow plan: %+v", p)
	}
	sub.Spec.Items[0].Quantity = ptr.To[int64](2)
	if p := planDrift(sub, changed, now.Add(2*time.Minute), time.Minute); len(p.follow) != 0 {
		t.Fatalf("plan after the spec edit: %+v", p)
	}
	if got := eventChangedGroups(map[string]json.RawMessage{"items": nil, "status": nil,
		"latest_invoice": nil, "cancel_at_period_end": nil}); !slices.Equal(got, []string{groupCancelAtPeriodEnd, groupItems}) {
		t.Errorf("groups of previous_attributes: %v", got)
	}
}
