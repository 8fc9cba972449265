package stripesim

import (
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
)

// Discounts: a subscription redeems a coupon (coupon=) or a promotion code (promotion_code=), which Stripe checks
// (the coupon valid, the code active, not expired, not used up, for this customer, a first transaction, a minimum
// amount) and counts. Its invoices apply the discount to their lines' subtotal before taxes; a once coupon is removed
// after the invoice it discounted, a repeating one after its months. Each change emits customer.discount.*.

// discount is a coupon applied to a subscription (and snapshotted on the invoices it discounted).
type discount struct {
	ID            string  `json:"id"`
	Coupon        string  `json:"coupon"`
	PromotionCode *string `json:"promotion_code"`
	Customer      string  `json:"customer"`
	Subscription  string  `json:"subscription"`
	Start         int64   `json:"start"`
	End           *int64  `json:"end"`
	// Used says a once discount has discounted an invoice: it is removed before the next one.
	Used bool `json:"used"`
}

// renderDiscount renders a discount as Stripe does, its coupon included (a deleted coupon's discounts keep working,
// so the coupon is rendered from what the simulator kept).
func (s *store) renderDiscount(d *discount, invoice string) obj {
	var cp any = d.Coupon
	if c := s.coupons[d.Coupon]; c != nil {
		cp = s.renderCoupon(c)
	}
	return obj{"id": d.ID, "object": "discount", "checkout_session": nil, "coupon": cp, "customer": d.Customer,
		"end": d.End, "invoice": nilIfEmpty(invoice), "invoice_item": nil, "promotion_code": d.PromotionCode,
		"start": d.Start, "subscription": nilIfEmpty(d.Subscription)}
}

// redeem checks and applies the coupon or promotion code of a subscription create or update (coupon=,
// promotion_code=), replacing any discount the subscription has. It returns what undoes the redemption's counts,
// for a request that fails after it.
func (c *call) redeem(sub *subscription, subtotal int64) (undo func()) {
	undo = func() {}
	f, p := &c.f, c.form
	couponID, hasCoupon := f.str(p, "coupon")
	promoID, hasPromo := f.str(p, "promotion_code")
	if !hasCoupon && !hasPromo || f.err != nil {
		return undo
	}
	if hasCoupon && hasPromo {
		f.fail("coupon", "You may only specify one of these parameters: coupon, promotion_code.")
		return undo
	}
	var promo *promotionCode
	if hasPromo {
		pc, ok := c.st.promotionCodes[promoID]
		if !ok {
			f.err = noSuch("promotion_code", "promotion_code", promoID)
			return undo
		}
		if msg := c.promotionCodeRefusal(pc, sub, subtotal); msg != "" {
			f.fail("promotion_code", "%s", msg)
			return undo
		}
		promo, couponID = pc, pc.Coupon
	}
	cp, ok := c.st.coupons[couponID]
	switch {
	case !ok || cp.Deleted:
		f.err = noSuch("coupon", "coupon", couponID)
		return undo
	case !cp.valid(c.now):
		f.err = &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: "coupon_expired",
			Param: "coupon", Message: "Coupon expired: " + couponID}
		return undo
	case cp.AmountOff != nil && cp.Currency != nil && sub.Currency != "" && *cp.Currency != sub.Currency:
		f.fail("coupon", "The coupon's currency (%s) must match the subscription's currency (%s).", *cp.Currency,
			sub.Currency)
		return undo
	}
	if old := sub.Discount; old != nil && old.Coupon == couponID && promo == nil && old.PromotionCode == nil {
		return undo // the same coupon again: nothing is redeemed twice
	}
	d := &discount{ID: c.sim.newID("di"), Coupon: couponID, Customer: sub.Customer, Subscription: sub.ID,
		Start: c.now}
	if cp.Duration == "repeating" && cp.DurationInMonths != nil {
		end := addPeriod(c.now, "month", *cp.DurationInMonths)
		d.End = &end
	}
	cp.TimesRedeemed++
	if promo != nil {
		promo.TimesRedeemed++
		d.PromotionCode = &promo.ID
	}
	undo = func() {
		cp.TimesRedeemed--
		if promo != nil {
			promo.TimesRedeemed--
		}
	}
	typ := "customer.discount.created"
	if sub.Discount != nil {
		typ = "customer.discount.updated"
	}
	sub.Discount = d
	c.emit(typ, c.st.renderDiscount(d, ""), nil)
	return undo
}

// promotionCodeRefusal says why a promotion code cannot be redeemed on the subscription, or "".
func (c *call) promotionCodeRefusal(pc *promotionCode, sub *subscription, subtotal int64) string {
	switch {
	case !pc.Active:
		return "This promotion code is not active."
	case pc.ExpiresAt != nil && c.now >= *pc.ExpiresAt:
		return "This promotion code has expired."
	case pc.MaxRedemptions != nil && pc.TimesRedeemed >= *pc.MaxRedemptions:
		return "This promotion code has reached its maximum number of redemptions (" +
			strconv.FormatInt(*pc.MaxRedemptions, 10) + ")."
	case pc.Customer != nil && *pc.Customer != sub.Customer:
		return "This promotion code cannot be redeemed by this customer."
	case pc.FirstTimeTransaction && c.st.hasPaid(sub.Customer):
		return "This promotion code cannot be redeemed because the associated customer has prior transactions."
	case pc.MinimumAmount != nil && (pc.MinimumAmountCurrency == nil || *pc.MinimumAmountCurrency == sub.Currency) &&
		subtotal < *pc.MinimumAmount:
		return "This promotion code cannot be redeemed because the order amount is below the minimum amount (" +
			money(*pc.MinimumAmount, sub.Currency) + ")."
	}
	return ""
}

// hasPaid says whether the customer has a paid invoice of a positive amount.
func (s *store) hasPaid(customer string) bool {
	for _, in := range s.invoices {
		if in.Customer == customer && in.Paid && in.AmountPaid > 0 {
			return true
		}
	}
	return false
}

// subtotalOf is what the subscription's items cost for one period.
func (s *store) subtotalOf(sub *subscription) int64 {
	var n int64
	for _, it := range sub.Items {
		if pr := s.prices[it.Price]; pr != nil {
			n += pr.UnitAmount * it.Quantity
		}
	}
	return n
}

// deleteDiscount is DELETE /v1/subscriptions/{id}/discount.
func (c *call) deleteDiscount() (any, *apiError) {
	c.f.unknown(c.form)
	sub, err := c.subscription()
	if err != nil {
		return nil, err
	}
	if sub.Discount == nil {
		return nil, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: codeResourceMissing,
			Message: "The subscription " + sub.ID + " has no discount."}
	}
	out := maps.Clone(c.removeDiscount(sub)) // the event's object stays a discount
	delete(out, "end")                       // a deleted_discount has no end
	out["deleted"] = true
	return out, nil
}

// removeDiscount takes the subscription's discount away with its event, and returns it rendered.
func (c *call) removeDiscount(sub *subscription) obj {
	out := c.st.renderDiscount(sub.Discount, "")
	c.emit("customer.discount.deleted", out, nil)
	sub.Discount = nil
	return out
}

// applyDiscount is the discount step of an invoice's amounts, between its lines' subtotal and taxes: it takes the
// subscription's discount off the lines it applies to (a percentage of each, or an amount spread over them in
// proportion, the last line taking the rounding) and records it on the invoice (discount, total_discount_amounts,
// each line's discount_amounts). A discount that has run out (a once coupon that discounted an invoice already, a
// repeating one past its end) is removed from the subscription first, with customer.discount.deleted.
func (c *call) applyDiscount(in *invoice, sub *subscription) {
	d := sub.Discount
	if d == nil {
		return
	}
	if d.Used || d.End != nil && c.now >= *d.End {
		c.removeDiscount(sub)
		return
	}
	cp := c.st.coupons[d.Coupon]
	if cp == nil {
		return
	}
	var lines []*invoiceLine
	var base int64
	for _, l := range in.Lines {
		if cp.AppliesTo != nil {
			if pr := c.st.prices[l.Price]; pr == nil || !slices.Contains(cp.AppliesTo, pr.Product) {
				continue
			}
		}
		lines = append(lines, l)
		base += l.Amount
	}
	if base == 0 {
		return // a free invoice (a trial) does not use up the discount
	}
	switch {
	case cp.PercentOff != nil:
		for _, l := range lines {
			l.DiscountAmount = int64(math.Round(float64(l.Amount) * *cp.PercentOff / 100))
		}
	case cp.AmountOff != nil:
		left := min(*cp.AmountOff, base)
		for i, l := range lines {
			share := left
			if i < len(lines)-1 {
				share = min(left, *cp.AmountOff*l.Amount/base)
			}
			l.DiscountAmount = min(share, l.Amount)
			left -= l.DiscountAmount
		}
	}
	snap := *d
	in.Discount = &snap
	for _, l := range lines {
		in.DiscountAmount += l.DiscountAmount
	}
	if cp.Duration == "once" {
		d.Used = true
	}
}

// discountAmounts renders Stripe's discount_amounts of a line or total_discount_amounts of an invoice.
func discountAmounts(d *discount, amount int64) []any {
	if d == nil {
		return []any{}
	}
	return []any{obj{"amount": amount, "discount": d.ID}}
}

// discountIDs renders an invoice's or line's discounts.
func discountIDs(d *discount) []any {
	if d == nil {
		return []any{}
	}
	return []any{d.ID}
}
