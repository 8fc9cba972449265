package controllers

import (
	"context"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A Subscription's discount (spec.discount): a coupon or a promotion code, added, changed or removed on a live
// subscription. Stripe removes a discount on its own when it runs out (a once coupon after the invoice it discounted,
// a repeating one after its months); status.discount remembers what the operator applied, so a discount that ended
// is not applied again (which would give the customer a second discount).

// Indexes of Subscriptions by the discount objects they reference.
const (
	indexDiscountCouponRef = "spec.discount.couponRef.name"
	indexDiscountPromoRef  = "spec.discount.promotionCodeRef.name"
)

// discountRefs are the Subscription's references to Coupons and PromotionCodes: one getting its Stripe ID re-queues
// the subscriptions waiting for it.
func discountRefs() []reference {
	return []reference{
		{kind: kindCoupon, index: indexDiscountCouponRef, extract: func(o client.Object) []string {
			if d := o.(*billingv1.Subscription).Spec.Discount; d != nil && d.CouponRef != nil {
				return []string{d.CouponRef.Name}
			}
			return nil
		}},
		{kind: kindPromotionCode, index: indexDiscountPromoRef, extract: func(o client.Object) []string {
			if d := o.(*billingv1.Subscription).Spec.Discount; d != nil && d.PromotionCodeRef != nil {
				return []string{d.PromotionCodeRef.Name}
			}
			return nil
		}},
	}
}

// Discount identities: what a discount redeems, "coupon:<id>" or "promotion_code:<id>".
const (
	discountCoupon = "coupon:"
	discountPromo  = "promotion_code:"
)

// wantDiscount resolves spec.discount to its identity ("" for none); msg says what is still missing.
func (e subscriptionExternal) wantDiscount(ctx context.Context, obj *billingv1.Subscription) (string, string,
	error) {
	d := obj.Spec.Discount
	switch {
	case d == nil:
		return "", "", nil
	case d.CouponID != "":
		return discountCoupon + d.CouponID, "", nil
	case d.PromotionCodeID != "":
		return discountPromo + d.PromotionCodeID, "", nil
	case d.CouponRef != nil:
		id, msg, err := e.refs.id(ctx, obj.Namespace, d.CouponRef.Name, &billingv1.Coupon{})
		if id == "" {
			return "", msg, err
		}
		return discountCoupon + id, "", nil
	case d.PromotionCodeRef != nil:
		id, msg, err := e.refs.id(ctx, obj.Namespace, d.PromotionCodeRef.Name, &billingv1.PromotionCode{})
		if id == "" {
			return "", msg, err
		}
		return discountPromo + id, "", nil
	}
	return "", "", nil
}

// haveDiscount is the identity of the discount Stripe applies to the subscription, "" for none.
func haveDiscount(d *stripego.Discount) string {
	switch {
	case d == nil || d.Deleted:
		return ""
	case d.PromotionCode != nil && d.PromotionCode.ID != "":
		return discountPromo + d.PromotionCode.ID
	case d.Coupon != nil:
		return discountCoupon + d.Coupon.ID
	}
	return ""
}

// discountAction is what the spec's discount asks of the Stripe subscription.
type discountAction int

const (
	discountKeep discountAction = iota
	discountApply
	discountRemove
)

// decideDiscount compares the spec's discount (want) with Stripe's (have). A discount Stripe removed because it
// ran out (status.discount ended, for the same identity) is not applied again.
func decideDiscount(want, have string, st *billingv1.DiscountStatus) discountAction {
	switch {
	case want == have:
		return discountKeep
	case want == "":
		return discountRemove
	case have == "" && st != nil && st.Ended && st.Applied == want:
		return discountKeep
	}
	return discountApply
}

// setDiscountParams adds the discount to a create or update.
func setDiscountParams(p *stripego.SubscriptionParams, want string) {
	if id, ok := strings.CutPrefix(want, discountPromo); ok {
		p.PromotionCode = stripego.String(id)
	} else if id, ok := strings.CutPrefix(want, discountCoupon); ok {
		p.Coupon = stripego.String(id)
	}
}

// setDiscountStatus records Stripe's discount. When Stripe has none, a discount the operator applied that ran out
// (a once coupon; a repeating one at its end) is kept as ended, so it is not applied again; any other is cleared.
func setDiscountStatus(obj *billingv1.Subscription, d *stripego.Discount, now time.Time) {
	prev := obj.Status.Discount
	if have := haveDiscount(d); have != "" {
		st := &billingv1.DiscountStatus{Start: unixTime(d.Start), End: unixTime(d.End)}
		if prev != nil {
			st.Applied = prev.Applied
		}
		if c := d.Coupon; c != nil {
			st.CouponID, st.AmountOff, st.Currency, st.Duration = c.ID, c.AmountOff, string(c.Currency),
				string(c.Duration)
			if c.PercentOff != 0 {
				st.PercentOff = formatPercent(c.PercentOff)
			}
		}
		if d.PromotionCode != nil {
			st.PromotionCodeID = d.PromotionCode.ID
		}
		obj.Status.Discount = st
		return
	}
	if prev == nil || prev.Applied == "" || prev.Applied != discountIdentity(prev) {
		obj.Status.Discount = nil
		return
	}
	ranOut := prev.Duration == string(stripego.CouponDurationOnce) ||
		prev.Duration == string(stripego.CouponDurationRepeating) && prev.End != nil && !now.Before(prev.End.Time)
	if !ranOut {
		obj.Status.Discount = nil // removed outside the operator: applied again
		return
	}
	ended := *prev
	ended.Ended = true
	obj.Status.Discount = &ended
}

// discountIdentity is the identity of a recorded discount.
func discountIdentity(st *billingv1.DiscountStatus) string {
	if st.PromotionCodeID != "" {
		return discountPromo + st.PromotionCodeID
	}
	return discountCoupon + st.CouponID
}

// recordDiscountApplied notes that the operator applied want (after Stripe accepted it).
func recordDiscountApplied(obj *billingv1.Subscription, want string) {
	if st := obj.Status.Discount; st != nil && want != "" && discountIdentity(st) == want {
		st.Applied = want
	}
}

// removeDiscount deletes the subscription's discount (DELETE /v1/subscriptions/{id}/discount).
func removeDiscount(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription, have string) error {
	p := &stripego.SubscriptionDeleteDiscountParams{}
	key := stripe.IdempotencyKey(string(obj.UID), "delete-discount-"+have, obj.Generation)
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resSubscription, Operation: opDeleteDiscount,
		IdempotencyKey: key}, &p.Params, func() (*stripego.Subscription, error) {
		return c.API.Subscriptions.DeleteDiscount(obj.Status.ID, p)
	})
	if stripe.IsNotFound(err) {
		err = nil // gone already
	}
	if err == nil {
		obj.Status.Discount = nil
	}
	return err
}

// opDeleteDiscount labels the metrics of removing a subscription's discount.
const opDeleteDiscount = "delete_discount"

// invoiceSummary summarises an invoice for status: its state, and its amounts in Stripe's order (the lines'
// subtotal, what discounts took off, the tax, the total).
func invoiceSummary(in *stripego.Invoice) *billingv1.InvoiceSummary {
	s := &billingv1.InvoiceSummary{ID: in.ID, Status: string(in.Status), AmountDue: in.AmountDue,
		Currency: string(in.Currency), HostedInvoiceURL: in.HostedInvoiceURL, Subtotal: in.Subtotal,
		Total: in.Total}
	for _, d := range in.TotalDiscountAmounts {
		s.DiscountAmount += d.Amount
	}
	if len(in.TotalTaxAmounts) > 0 { // Stripe's tax is null on an invoice without tax rates
		s.Tax = ptr.To(in.Tax)
	}
	return s
}
