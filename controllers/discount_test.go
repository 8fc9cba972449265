package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// A Subscription created with a Coupon it waits for is discounted from its first invoice, and status shows the
// discount and the invoice's subtotal, discount and total; the discount is changed to a promotion code and removed on
// the live subscription, each in Stripe.
func TestSubscriptionDiscountAddChangeRemove(t *testing.T) {
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "acme", "acme", "monthly")
	sub.Spec.Items[0].Quantity = ptr.To[int64](3)
	sub.Spec.Discount = &billingv1.SubscriptionDiscount{CouponRef: &billingv1.LocalObjectReference{Name: "partner"}}
	create(t, sub, newProduct(ns, "plan"), newPrice(ns, "monthly", 2000), newCustomer(ns, "acme"))
	waitReason(t, ctx, sub, billingv1.ReasonDependencyNotReady) // no Coupon yet
	create(t, newCoupon(ns, "partner"))
	sub = waitReady(t, ctx, sub)
	cp := waitReady(t, ctx, newCoupon(ns, "partner"))
	d, in := sub.Status.Discount, sub.Status.LatestInvoice
	if d == nil || d.CouponID != cp.Status.ID || d.PercentOff != "20" || d.Duration != "forever" || d.Start == nil ||
		d.Applied != "coupon:"+cp.Status.ID {
		t.Errorf("status.discount: %+v", d)
	}
	if in == nil || in.Subtotal != 6000 || in.DiscountAmount != 1200 || in.Total != 4800 || in.AmountDue != 4800 {
		t.Errorf("status.latestInvoice: %+v", in)
	}
	if got := stripeSubscription(t, sub.Status.ID); got.Discount == nil || got.Discount.Coupon.ID != cp.Status.ID {
		t.Errorf("Stripe discount: %+v", got.Discount)
	}
	if got, _ := stripeCoupon(t, cp.Status.ID); got.TimesRedeemed != 1 {
		t.Errorf("redeemed %d times", got.TimesRedeemed)
	}

	// Changed to a promotion code of another coupon.
	half := newCoupon(ns, "half")
	half.Spec.PercentOff = ptr.To(intstr.FromInt32(50))
	create(t, half, newPromotionCode(ns, "spring", "half", codeFor(ns, "SPRING")))
	pc := waitReady(t, ctx, newPromotionCode(ns, "spring", "half", ""))
	if err := updateSpec(sub, func(s *billingv1.Subscription) {
		s.Spec.Discount = &billingv1.SubscriptionDiscount{
			PromotionCodeRef: &billingv1.LocalObjectReference{Name: "spring"}}
	}); err != nil {
		t.Fatal(err)
	}
	sub = waitReady(t, ctx, sub)
	got := stripeSubscription(t, sub.Status.ID)
	if got.Discount == nil || got.Discount.PromotionCode == nil || got.Discount.PromotionCode.ID != pc.Status.ID ||
		sub.Status.Discount == nil || sub.Status.Discount.PromotionCodeID != pc.Status.ID ||
		sub.Status.Discount.PercentOff != "50" {
		t.Errorf("after the change: Stripe %+v, status %+v", got.Discount, sub.Status.Discount)
	}

	if err := updateSpec(sub, func(s *billingv1.Subscription) { s.Spec.Discount = nil }); err != nil {
		t.Fatal(err)
	}
	sub = waitReady(t, ctx, sub)
	if got := stripeSubscription(t, sub.Status.ID); got.Discount != nil || sub.Status.Discount != nil {
		t.Errorf("after removal: Stripe %+v, status %+v", got.Discount, sub.Status.Discount)
	}

	bad := newSubscription(ns, "bad", "acme", "monthly")
	bad.Spec.Discount = &billingv1.SubscriptionDiscount{CouponID: "X", PromotionCodeID: "promo_1"}
	if err := env.Client.Create(ctx, bad); err == nil || !strings.Contains(err.Error(),
		"exactly one of couponRef, couponID, promotionCodeRef or promotionCodeID") {
		t.Errorf("two discounts: %v", err)
	}
}

// A promotion code over its redemption limit is refused by Stripe on the second subscription, which is Stalled with
// Stripe's reason in its status; the first keeps its discount.
func TestPromotionCodeOverLimitOnSubscription(t *testing.T) {
	ctx, ns := newNamespace(t)
	pc := newPromotionCode(ns, "single", "base", codeFor(ns, "SINGLE"))
	pc.Spec.MaxRedemptions = ptr.To[int64](1)
	first := newSubscription(ns, "first", "one", "monthly")
	first.Spec.Discount = &billingv1.SubscriptionDiscount{
		PromotionCodeRef: &billingv1.LocalObjectReference{Name: "single"}}
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 1000), newCustomer(ns, "one"), newCustomer(ns, "two"),
		newCoupon(ns, "base"), pc, first)
	first = waitReady(t, ctx, first)
	second := newSubscription(ns, "second", "two", "monthly")
	second.Spec.Discount = first.Spec.Discount
	create(t, second)
	cond := waitReason(t, ctx, second, billingv1.ReasonInvalidRequest)
	if !strings.Contains(cond.Message, "maximum number of redemptions") ||
		!strings.Contains(cond.Message, "param promotion_code") {
		t.Errorf("second subscription: %s", cond.Message)
	}
	pc = waitReadyAfterRequest(t, pc)
	if pc.Status.TimesRedeemed != 1 || first.Status.Discount == nil {
		t.Errorf("redemptions %d, first subscription's discount %+v", pc.Status.TimesRedeemed, first.Status.Discount)
	}
}

// A once coupon discounts the first invoice; when Stripe removes the discount at the renewal, status records it as
// ended and the operator does not apply it again (which would discount a second invoice), even when asked to
// reconcile; the event of Stripe's own removal is not reported as drift.
func TestOnceDiscountIsNotReapplied(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sc := simClient()
	clock, cus := clockCustomer(t, ns, "payer")
	once := newCoupon(ns, "welcome")
	once.Spec.Duration = billingv1.CouponOnce
	sub := newSubscription(ns, "welcomed", "payer", "monthly")
	sub.Spec.Discount = &billingv1.SubscriptionDiscount{CouponRef: &billingv1.LocalObjectReference{Name: "welcome"}}
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 1000), cus, once, sub)
	sub = waitReady(t, ctx, sub)
	if in := sub.Status.LatestInvoice; in == nil || in.Total != 800 {
		t.Fatalf("first invoice: %+v", in)
	}
	first := sub.Status.LatestInvoice.ID
	if _, err := sc.API.TestHelpersTestClocks.Advance(clock.ID, &stripego.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripego.Int64(sub.Status.CurrentPeriodEnd.Unix() + 3600)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		if d := sub.Status.Discount; d == nil || !d.Ended {
			return fmt.Errorf("status.discount: %+v", d)
		}
		if in := sub.Status.LatestInvoice; in == nil || in.ID == first {
			return fmt.Errorf("no renewal invoice yet: %+v", in)
		}
		return nil
	})
	if in := sub.Status.LatestInvoice; in.Total != 1000 || in.DiscountAmount != 0 {
		t.Errorf("renewal invoice: %+v", in)
	}
	sub = waitReadyAfterRequest(t, sub)
	if got := stripeSubscription(t, sub.Status.ID); got.Discount != nil {
		t.Errorf("the once coupon was applied again: %+v", got.Discount)
	}
	if got, _ := stripeCoupon(t, sub.Status.Discount.CouponID); got.TimesRedeemed != 1 {
		t.Errorf("the coupon was redeemed %d times", got.TimesRedeemed)
	}
	assertNoEvent(t, ns, sub.Name, "DriftDetected")
}

// decideDiscount and setDiscountStatus: a discount that ran out is kept as ended and not applied again; one removed
// by someone else before it ran out is applied again; a change of the spec applies the new one.
func TestDecideDiscount(t *testing.T) {
	start := metav1.NewTime(time.Unix(1_700_000_000, 0))
	end := metav1.NewTime(start.AddDate(0, 3, 0))
	applied := func(duration string, e *metav1.Time) *billingv1.Subscription {
		return &billingv1.Subscription{Status: billingv1.SubscriptionStatus{Discount: &billingv1.DiscountStatus{
			CouponID: "C", Duration: duration, Start: &start, End: e, Applied: "coupon:C"}}}
	}
	cases := []struct {
		name    string
		sub     *billingv1.Subscription
		now     time.Time
		ended   bool
		cleared bool
		action  discountAction
	}{
		{"once, removed by Stripe", applied("once", nil), start.AddDate(0, 1, 0), true, false, discountKeep},
		{"repeating, at its end", applied("repeating", &end), end.Time, true, false, discountKeep},
		{"repeating, removed early", applied("repeating", &end), start.AddDate(0, 1, 0), false, true, discountApply},
		{"forever, removed by hand", applied("forever", nil), start.AddDate(0, 1, 0), false, true, discountApply},
		{"never applied by the operator", &billingv1.Subscription{}, start.Time, false, true, discountApply},
	}
	for _, c := range cases {
		setDiscountStatus(c.sub, nil, c.now)
		st := c.sub.Status.Discount
		if c.cleared != (st == nil) || (st != nil && st.Ended != c.ended) {
			t.Errorf("%s: status %+v", c.name, st)
		}
		if got := decideDiscount("coupon:C", "", st); got != c.action {
			t.Errorf("%s: action %d, want %d", c.name, got, c.action)
		}
	}
	ended := applied("once", nil).Status.Discount
	ended.Ended = true
	if decideDiscount("coupon:D", "", ended) != discountApply || decideDiscount("", "coupon:C", nil) != discountRemove ||
		decideDiscount("coupon:C", "promotion_code:promo_1", nil) != discountApply {
		t.Error("a new discount, a removal or a change is not carried out")
	}
}

// assertNoEvent checks that obj has no Event with the reason (Events are recorded before the status that follows
// them, so a check after the status is final).
func assertNoEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	l := &corev1.EventList{}
	if err := env.Client.List(t.Context(), l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason {
			t.Errorf("%s has an Event %s: %s", name, reason, e.Message)
		}
	}
}

// A coupon applied in Stripe to a Subscription whose spec has no discount is drift: its customer.discount.created
// event (someone else's request) raises DriftDetected and the read that follows removes the discount.
func TestDiscountAddedInStripeIsRemoved(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "plain", "payer", "monthly")
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 1000), newCustomer(ns, "payer"), newCoupon(ns, "gift"),
		sub)
	sub = waitReady(t, ctx, sub)
	cp := waitReady(t, ctx, newCoupon(ns, "gift"))
	// Someone applies the coupon "in the Dashboard".
	if _, err := simClient().API.Subscriptions.Update(sub.Status.ID,
		&stripego.SubscriptionParams{Coupon: stripego.String(cp.Status.ID)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripeSubscription(t, sub.Status.ID); got.Discount != nil {
			return fmt.Errorf("Stripe still has the discount %s", got.Discount.Coupon.ID)
		}
		return nil
	})
	assertEvent(t, ns, sub.Name, "Warning", "DriftDetected")
}

// Under changesInStripe Follow, a discount added in Stripe (support granting a goodwill coupon in the Dashboard)
// stands, at a forced resync too; SpecDiverged names it and a Normal ChangedInStripe Event says so.
func TestDiscountAddedInStripeIsFollowed(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "goodwill", "payer", "monthly")
	sub.Spec.ChangesInStripe = billingv1.ChangesFollow
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 1000), newCustomer(ns, "payer"), newCoupon(ns, "gift"),
		sub)
	sub = waitReady(t, ctx, sub)
	cp := waitReady(t, ctx, newCoupon(ns, "gift"))
	if _, err := simClient().API.Subscriptions.Update(sub.Status.ID,
		&stripego.SubscriptionParams{Coupon: stripego.String(cp.Status.ID)}); err != nil {
		t.Fatal(err)
	}
	waitSpecDiverged(t, ctx, sub, func(c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue && strings.Contains(c.Message, "discount")
	})
	assertEvent(t, ns, sub.Name, "Normal", billingv1.ReasonChangedInStripe)
	patch := client.MergeFrom(sub.DeepCopy())
	sub.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: "forced"}
	if err := env.Client.Patch(ctx, sub, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		if sub.Status.LastHandledReconcileAt != "forced" {
			return fmt.Errorf("resync not handled yet")
		}
		return nil
	})
	if got := stripeSubscription(t, sub.Status.ID); got.Discount == nil || got.Discount.Coupon.ID != cp.Status.ID {
		t.Errorf("the discount added in Stripe was removed: %+v", got.Discount)
	}
	if evs := eventsFor(t, ns, sub.Name, reasonDriftDetected); len(evs) != 0 {
		t.Errorf("DriftDetected under Follow: %+v", evs)
	}
}
