package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func newProduct(ns, name string) *billingv1.Product {
	return &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.ProductSpec{Name: "Product " + name}}
}

// newPrice is a monthly price of the Product "plan".
func newPrice(ns, name string, amount int64) *billingv1.Price {
	return &billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.PriceSpec{ProductRef: &billingv1.LocalObjectReference{Name: "plan"}, Currency: "usd",
			UnitAmount: amount, Recurring: &billingv1.Recurring{Interval: billingv1.IntervalMonth},
			LookupKey: ns + "-" + name}}
}

func newSubscription(ns, name, customer string, prices ...string) *billingv1.Subscription {
	s := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: customer}}}
	for _, p := range prices {
		s.Spec.Items = append(s.Spec.Items, billingv1.SubscriptionItem{
			PriceRef: &billingv1.LocalObjectReference{Name: p}, Quantity: ptr.To[int64](1)})
	}
	return s
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func stripeSubscription(t *testing.T, id string) *stripego.Subscription {
	t.Helper()
	sub, err := simClient().API.Subscriptions.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func stripePrice(t *testing.T, id string) *stripego.Price {
	t.Helper()
	pr, err := simClient().API.Prices.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

func TestProductUpdateAndArchive(t *testing.T) {
	ctx, ns := newNamespace(t)
	p := newProduct(ns, "basic")
	p.Spec.UnitLabel = "seat"
	create(t, p)
	p = waitReady(t, ctx, p)
	p.Spec.Description = "The basic plan"
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	p = waitReady(t, ctx, p)
	got, err := simClient().API.Products.Get(p.Status.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != "The basic plan" || got.UnitLabel != "seat" || !got.Active {
		t.Errorf("Stripe product: %+v", got)
	}
	if err := env.Client.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, p)
	if got, _ := simClient().API.Products.Get(p.Status.ID, nil); got.Active {
		t.Error("Archive left the product active")
	}
}

// A Price change to an immutable field rolls the price; a Keep subscription stays on the old price and a Migrate
// subscription moves to the successor.
func TestPriceRolloverKeepAndMigrate(t *testing.T) {
	ctx, ns := newNamespace(t)
	keepSub := newSubscription(ns, "keeper", "cus", "monthly")
	migrateSub := newSubscription(ns, "mover", "cus", "monthly")
	migrateSub.Spec.PriceChangePolicy = billingv1.PriceChangeMigrate
	migrateSub.Spec.ProrationBehavior = billingv1.ProrationNone
	// Created in reverse dependency order: the subscriptions wait for their customer and price.
	create(t, keepSub, migrateSub)
	cond := waitReason(t, ctx, keepSub, billingv1.ReasonDependencyNotReady)
	if cond.Status != metav1.ConditionFalse {
		t.Errorf("DependencyNotReady with Ready=%s", cond.Status)
	}
	before := writes()
	time.Sleep(300 * time.Millisecond)
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes while dependencies were missing", n)
	}
	prod := newProduct(ns, "plan")
	price := newPrice(ns, "monthly", 1000)
	create(t, newCustomer(ns, "cus"), price, prod)
	keepSub = waitReady(t, ctx, keepSub)
	migrateSub = waitReady(t, ctx, migrateSub)
	price = waitReady(t, ctx, price)
	prod = waitReady(t, ctx, prod)
	oldID := price.Status.ID
	if keepSub.Status.StripeState != "active" || len(keepSub.Status.Items) != 1 ||
		keepSub.Status.Items[0].PriceID != oldID || keepSub.Status.CurrentPeriodEnd == nil ||
		keepSub.Status.LatestInvoice == nil || keepSub.Status.LatestInvoice.AmountDue != 1000 {
		t.Fatalf("subscription status: %+v", keepSub.Status)
	}
	// Make the price the product's default, so the rollover must repoint it before archiving.
	if _, err := simClient().API.Products.Update(prod.Status.ID,
		&stripego.ProductParams{DefaultPrice: stripego.String(oldID)}); err != nil {
		t.Fatal(err)
	}

	price.Spec.UnitAmount = 1500
	if err := env.Client.Update(ctx, price); err != nil {
		t.Fatal(err)
	}
	price = waitReady(t, ctx, price)
	newID := price.Status.ID
	if newID == oldID || !slices.Contains(price.Status.PreviousIDs, oldID) {
		t.Fatalf("no rollover: %+v", price.Status)
	}
	if old := stripePrice(t, oldID); old.Active || old.LookupKey != "" {
		t.Errorf("old price still active or still holds the lookup key: %+v", old)
	}
	if cur := stripePrice(t, newID); cur.UnitAmount != 1500 || cur.LookupKey != price.Spec.LookupKey {
		t.Errorf("successor: amount %d lookup key %q", cur.UnitAmount, cur.LookupKey)
	}
	if got, _ := simClient().API.Products.Get(prod.Status.ID, nil); got.DefaultPrice == nil ||
		got.DefaultPrice.ID != newID {
		t.Errorf("the product's default price was not moved to the successor")
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if s := stripeSubscription(t, migrateSub.Status.ID); s.Items.Data[0].Price.ID != newID {
			return fmt.Errorf("the Migrate subscription is still on %s", s.Items.Data[0].Price.ID)
		}
		return nil
	})
	// Give the Keep subscription the same chance to (wrongly) move.
	time.Sleep(time.Second)
	if s := stripeSubscription(t, keepSub.Status.ID); s.Items.Data[0].Price.ID != oldID {
		t.Errorf("the Keep subscription moved to %s", s.Items.Data[0].Price.ID)
	}
	if n := sim.ObjectsByUID()["price"][string(price.UID)]; n != 2 {
		t.Errorf("%d Stripe prices for the Price, want the original and one successor", n)
	}
}

func TestSubscriptionItemsAndDeletionPolicies(t *testing.T) {
	ctx, ns := newNamespace(t)
	create(t, newCustomer(ns, "cus"), newProduct(ns, "plan"), newPrice(ns, "a", 100),
		newPrice(ns, "b", 200))
	subs := map[billingv1.SubscriptionDeletionPolicy]*billingv1.Subscription{}
	for _, policy := range []billingv1.SubscriptionDeletionPolicy{billingv1.SubscriptionCancel,
		billingv1.SubscriptionCancelAtPeriodEnd, billingv1.SubscriptionOrphan} {
		s := newSubscription(ns, "sub-"+strings.ToLower(string(policy)), "cus", "a")
		s.Spec.DeletionPolicy = policy
		create(t, s)
		subs[policy] = s
	}
	s := waitReady(t, ctx, subs[billingv1.SubscriptionCancel])
	itemID := s.Status.Items[0].ID

	// Quantity change keeps the item; a new price adds one; removing one deletes it.
	s.Spec.Items[0].Quantity = ptr.To[int64](4)
	s.Spec.Items = append(s.Spec.Items, billingv1.SubscriptionItem{PriceRef: &billingv1.LocalObjectReference{Name: "b"}})
	s.Spec.CancelAtPeriodEnd = true
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	s = waitReady(t, ctx, s)
	got := stripeSubscription(t, s.Status.ID)
	if len(got.Items.Data) != 2 || got.Items.Data[0].ID != itemID || got.Items.Data[0].Quantity != 4 ||
		!got.CancelAtPeriodEnd {
		t.Fatalf("after update: %+v items %+v", got, got.Items.Data)
	}
	s.Spec.Items = s.Spec.Items[1:]
	s.Spec.CancelAtPeriodEnd = false
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	s = waitReady(t, ctx, s)
	got = stripeSubscription(t, s.Status.ID)
	if len(got.Items.Data) != 1 || got.Items.Data[0].ID == itemID || got.CancelAtPeriodEnd {
		t.Fatalf("after removing an item: %+v", got.Items.Data)
	}

	for policy, sub := range subs {
		sub = waitReady(t, ctx, sub)
		if err := env.Client.Delete(ctx, sub); err != nil {
			t.Fatal(err)
		}
		waitGone(t, ctx, sub)
		got := stripeSubscription(t, sub.Status.ID)
		switch policy {
		case billingv1.SubscriptionCancel:
			if got.Status != stripego.SubscriptionStatusCanceled {
				t.Errorf("Cancel: status %s", got.Status)
			}
		case billingv1.SubscriptionCancelAtPeriodEnd:
			if got.Status != stripego.SubscriptionStatusActive || !got.CancelAtPeriodEnd {
				t.Errorf("CancelAtPeriodEnd: status %s cancel_at_period_end %v", got.Status, got.CancelAtPeriodEnd)
			}
		case billingv1.SubscriptionOrphan:
			if got.Status != stripego.SubscriptionStatusActive || got.CancelAtPeriodEnd {
				t.Errorf("Orphan changed the subscription: %s %v", got.Status, got.CancelAtPeriodEnd)
			}
		}
	}
}
