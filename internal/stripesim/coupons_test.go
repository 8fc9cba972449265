package stripesim

import (
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// TestCouponRules: a coupon is a percent or an amount off with the parameters Stripe requires; a custom ID is
// unique; only name and metadata change (the rest are unknown parameters on update, as Stripe answers); a deleted
// coupon is gone; applies_to is shown only when expanded.
func TestCouponRules(t *testing.T) {
	_, sc := newClient(t, Options{})
	prod, _ := fixture(t, sc, 1000)
	cp := must(sc.Coupons.New(&stripe.CouponParams{ID: stripe.String("PARTNER20"), PercentOff: stripe.Float64(20),
		Duration: stripe.String("forever"), Name: stripe.String("Partner"),
		AppliesTo: &stripe.CouponAppliesToParams{Products: stripe.StringSlice([]string{prod.ID})}}))
	if cp.ID != "PARTNER20" || cp.PercentOff != 20 || cp.Duration != "forever" || !cp.Valid || cp.AppliesTo != nil {
		t.Errorf("created coupon: %+v", cp)
	}
	gen := must(sc.Coupons.New(&stripe.CouponParams{AmountOff: stripe.Int64(500), Currency: stripe.String("usd"),
		Duration: stripe.String("repeating"), DurationInMonths: stripe.Int64(3)}))
	if len(gen.ID) != 8 || gen.AmountOff != 500 || gen.Currency != "usd" || gen.DurationInMonths != 3 {
		t.Errorf("generated coupon: %+v", gen)
	}
	p := &stripe.CouponParams{}
	p.AddExpand("applies_to")
	if got := must(sc.Coupons.Get("PARTNER20", p)); got.AppliesTo == nil || len(got.AppliesTo.Products) != 1 ||
		got.AppliesTo.Products[0] != prod.ID {
		t.Errorf("applies_to expanded: %+v", got.AppliesTo)
	}

	refusals := []struct {
		p     *stripe.CouponParams
		param string
		msg   string
	}{
		{&stripe.CouponParams{ID: stripe.String("PARTNER20"), PercentOff: stripe.Float64(10)}, "id",
			"Coupon already exists."},
		{&stripe.CouponParams{PercentOff: stripe.Float64(10), AmountOff: stripe.Int64(5),
			Currency: stripe.String("usd")}, "percent_off", "only specify one of these parameters"},
		{&stripe.CouponParams{Duration: stripe.String("once")}, "", "either percent_off or amount_off"},
		{&stripe.CouponParams{AmountOff: stripe.Int64(5)}, "currency", "currency"},
		{&stripe.CouponParams{PercentOff: stripe.Float64(101)}, "percent_off", "at most 100"},
		{&stripe.CouponParams{PercentOff: stripe.Float64(5), Duration: stripe.String("repeating")},
			"duration_in_months", "duration_in_months"},
		{&stripe.CouponParams{PercentOff: stripe.Float64(5), DurationInMonths: stripe.Int64(2)},
			"duration_in_months", "only be set when duration is repeating"},
		{&stripe.CouponParams{PercentOff: stripe.Float64(5), RedeemBy: stripe.Int64(1)}, "redeem_by", "future"},
		{&stripe.CouponParams{PercentOff: stripe.Float64(5), AppliesTo: &stripe.CouponAppliesToParams{
			Products: stripe.StringSlice([]string{"prod_nothing"})}}, "applies_to[products][0]", "No such product"},
	}
	for _, r := range refusals {
		_, err := sc.Coupons.New(r.p)
		code := stripe.ErrorCode("")
		status := 400
		if strings.HasPrefix(r.msg, "No such") {
			status = 404
		}
		info := stripeErr(t, err, status, stripe.ErrorTypeInvalidRequest, code)
		if info.Param != r.param || !strings.Contains(info.Msg, r.msg) {
			t.Errorf("%+v: got param %q message %q", r.p, info.Param, info.Msg)
		}
	}

	up := must(sc.Coupons.Update("PARTNER20", &stripe.CouponParams{Name: stripe.String("Partners"),
		Metadata: map[string]string{"team": "sales"}}))
	if up.Name != "Partners" || up.Metadata["team"] != "sales" || up.PercentOff != 20 {
		t.Errorf("updated coupon: %+v", up)
	}
	for _, p := range []*stripe.CouponParams{{PercentOff: stripe.Float64(30)}, {Duration: stripe.String("once")},
		{MaxRedemptions: stripe.Int64(3)}, {RedeemBy: stripe.Int64(time.Now().Add(time.Hour).Unix())}} {
		_, err := sc.Coupons.Update("PARTNER20", p)
		info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		if !strings.HasPrefix(info.Msg, "Received unknown parameter: ") {
			t.Errorf("update of an immutable field: %s", info.Msg)
		}
	}

	it := sc.Coupons.List(&stripe.CouponListParams{})
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 2 {
		t.Errorf("listed %d coupons (%v), want 2", n, it.Err())
	}
	del := must(sc.Coupons.Del("PARTNER20", nil))
	if !del.Deleted {
		t.Errorf("delete answered %+v", del)
	}
	_, err := sc.Coupons.Get("PARTNER20", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	// The ID is free again once deleted.
	must(sc.Coupons.New(&stripe.CouponParams{ID: stripe.String("PARTNER20"), PercentOff: stripe.Float64(25)}))
}

// TestPromotionCodeRules: one active code per string regardless of case; codes cannot be deleted, only deactivated,
// and only active and metadata change; a code of a deleted coupon cannot be reactivated.
func TestPromotionCodeRules(t *testing.T) {
	_, sc := newClient(t, Options{})
	cp := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10)}))
	pc := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("LAUNCH")}))
	if !pc.Active || pc.Code != "LAUNCH" || pc.Coupon == nil || pc.Coupon.ID != cp.ID ||
		!strings.HasPrefix(pc.ID, "promo_") {
		t.Errorf("created promotion code: %+v", pc)
	}
	_, err := sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("launch")})
	info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceAlreadyExists)
	if info.Msg != "An active promotion code with `code: launch` already exists." || info.Param != "code" {
		t.Errorf("duplicate code: %+v", info)
	}
	_, err = sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("nothing"),
		Code: stripe.String("OTHER")})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)

	_, err = sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{Code: stripe.String("RENAMED")})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Msg !=
		"Received unknown parameter: code" {
		t.Errorf("code update: %s", info.Msg)
	}
	off := must(sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(false)}))
	if off.Active {
		t.Error("deactivation left the code active")
	}
	second := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("Launch")}))
	_, err = sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(true)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceAlreadyExists)

	must(sc.Coupons.Del(cp.ID, nil))
	must(sc.PromotionCodes.Update(second.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(false)}))
	_, err = sc.PromotionCodes.Update(second.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(true)})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.Contains(info.Msg,
		"coupon has been deleted") {
		t.Errorf("reactivation with a deleted coupon: %s", info.Msg)
	}
	it := sc.PromotionCodes.List(&stripe.PromotionCodeListParams{Code: stripe.String("launch")})
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 2 {
		t.Errorf("listed %d codes LAUNCH (%v), want 2", n, it.Err())
	}
}

// TestPromotionCodeRedemption: a subscription redeems a promotion code only within its restrictions, with
// Stripe's reasons, and each redemption is counted on the code and its coupon.
func TestPromotionCodeRedemption(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, pr := fixture(t, sc, 1000)
	cp := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(50), Duration: stripe.String("forever")}))
	customer := func() *stripe.Customer {
		return must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
				DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	}
	one, two, three := customer(), customer(), customer()
	limited := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("ONCEONLY"), MaxRedemptions: stripe.Int64(1)}))
	sub := must(subscribe(t, sc, one, pr, func(p *stripe.SubscriptionParams) {
		p.PromotionCode = stripe.String(limited.ID)
	}))
	if sub.Discount == nil || sub.Discount.PromotionCode == nil || sub.Discount.PromotionCode.ID != limited.ID ||
		sub.Discount.Coupon.ID != cp.ID || sub.LatestInvoice.AmountDue != 500 {
		t.Errorf("subscription with the code: discount %+v, amount due %d", sub.Discount, sub.LatestInvoice.AmountDue)
	}
	_, err := subscribe(t, sc, two, pr, func(p *stripe.SubscriptionParams) {
		p.PromotionCode = stripe.String(limited.ID)
	})
	info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	if info.Param != "promotion_code" || !strings.Contains(info.Msg, "maximum number of redemptions") {
		t.Errorf("a used-up code: %+v", info)
	}
	if got := must(sc.PromotionCodes.Get(limited.ID, nil)); got.TimesRedeemed != 1 || got.Coupon.TimesRedeemed != 1 {
		t.Errorf("redemptions counted: code %d coupon %d", got.TimesRedeemed, got.Coupon.TimesRedeemed)
	}

	mine := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("FORONE"), Customer: stripe.String(one.ID)}))
	_, err = subscribe(t, sc, two, pr, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(mine.ID) })
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.Contains(info.Msg,
		"cannot be redeemed by this customer") {
		t.Errorf("a code of another customer: %s", info.Msg)
	}
	first := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("WELCOME"), Restrictions: &stripe.PromotionCodeRestrictionsParams{
			FirstTimeTransaction: stripe.Bool(true)}}))
	_, err = sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(first.ID)})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Msg !=
		"This promotion code cannot be redeemed because the associated customer has prior transactions." {
		t.Errorf("a first-time code for a paying customer: %s", info.Msg)
	}
	big := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("BIGSPEND"), Restrictions: &stripe.PromotionCodeRestrictionsParams{
			MinimumAmount: stripe.Int64(5000), MinimumAmountCurrency: stripe.String("usd")}}))
	_, err = subscribe(t, sc, three, pr, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(big.ID) })
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.Contains(info.Msg,
		"below the minimum amount") {
		t.Errorf("below the minimum amount: %s", info.Msg)
	}
	must(sc.PromotionCodes.Update(big.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(false)}))
	_, err = subscribe(t, sc, three, pr, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(big.ID) })
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.Contains(info.Msg, "not active") {
		t.Errorf("an inactive code: %s", info.Msg)
	}
	used := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(5), MaxRedemptions: stripe.Int64(1)}))
	must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Coupon: stripe.String(used.ID)}))
	_, err = subscribe(t, sc, three, pr, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(used.ID) })
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeCouponExpired)
	if got := must(sc.Coupons.Get(used.ID, nil)); got.Valid || got.TimesRedeemed != 1 {
		t.Errorf("a used-up coupon: valid %v, redeemed %d", got.Valid, got.TimesRedeemed)
	}
}

// TestInvoiceDiscount: invoices apply the subscription's discount to their lines before the total (a percentage of
// each line; an amount over the lines of the products it applies to), render Stripe's discount fields, and a once
// coupon is removed before the next invoice while a forever coupon keeps discounting even once deleted. Every
// change of a discount is an event.
func TestInvoiceDiscount(t *testing.T) {
	_, sc := newClient(t, Options{})
	clock, cus, pr := clockFixture(t, sc, "pm_card_visa") // 2500 a month
	addOnProd := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("Add-on")}))
	addOn := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(addOnProd.ID),
		Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1000),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}))
	pct := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(12.5), Duration: stripe.String("once")}))
	sub := must(subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) {
		p.Items = append(p.Items, &stripe.SubscriptionItemsParams{Price: stripe.String(addOn.ID),
			Quantity: stripe.Int64(2)})
		p.Coupon = stripe.String(pct.ID)
	}))
	in := must(sc.Invoices.Get(sub.LatestInvoice.ID, nil))
	// 2500 + 2 × 1000 = 4500; 12.5% of 2500 is 312.5 -> 313, of 2000 is 250.
	if in.Subtotal != 4500 || in.Total != 4500-563 || in.AmountDue != 3937 || in.AmountPaid != 3937 ||
		in.Discount == nil || in.Discount.Coupon.ID != pct.ID || len(in.TotalDiscountAmounts) != 1 ||
		in.TotalDiscountAmounts[0].Amount != 563 || in.TotalDiscountAmounts[0].Discount.ID != in.Discount.ID {
		t.Fatalf("discounted invoice: subtotal %d total %d due %d paid %d discount %+v amounts %+v", in.Subtotal,
			in.Total, in.AmountDue, in.AmountPaid, in.Discount, in.TotalDiscountAmounts)
	}
	if l := in.Lines.Data; l[0].DiscountAmounts[0].Amount != 313 || l[1].DiscountAmounts[0].Amount != 250 {
		t.Errorf("line discounts: %+v %+v", l[0].DiscountAmounts[0], l[1].DiscountAmounts[0])
	}
	if got := subStatus(t, sc, sub.ID); got.Discount == nil {
		t.Error("a once discount left before its invoice's period ended")
	}
	// The next invoice is not discounted: the once coupon is removed first.
	advance(t, sc, clock, sub.CurrentPeriodEnd+60)
	got := subStatus(t, sc, sub.ID)
	if got.Discount != nil || got.LatestInvoice.AmountDue != 4500 || got.LatestInvoice.ID == in.ID {
		t.Errorf("after a once coupon: discount %+v, next invoice %s due %d", got.Discount, got.LatestInvoice.ID,
			got.LatestInvoice.AmountDue)
	}

	// An amount off, limited to the add-on's product, forever: it discounts the add-on line only, and keeps
	// discounting once the coupon is deleted.
	amt := must(sc.Coupons.New(&stripe.CouponParams{AmountOff: stripe.Int64(1500), Currency: stripe.String("usd"),
		Duration: stripe.String("forever"), AppliesTo: &stripe.CouponAppliesToParams{
			Products: stripe.StringSlice([]string{addOnProd.ID})}}))
	must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Coupon: stripe.String(amt.ID)}))
	must(sc.Coupons.Del(amt.ID, nil))
	advance(t, sc, clock, got.CurrentPeriodEnd+60)
	got = subStatus(t, sc, sub.ID)
	if got.Discount == nil || got.Discount.Coupon.ID != amt.ID || got.LatestInvoice.AmountDue != 4500-1500 ||
		got.LatestInvoice.TotalDiscountAmounts[0].Amount != 1500 {
		t.Errorf("a forever amount off of a deleted coupon: discount %+v, due %d", got.Discount,
			got.LatestInvoice.AmountDue)
	}
	must(sc.Subscriptions.DeleteDiscount(sub.ID, nil))
	if got := subStatus(t, sc, sub.ID); got.Discount != nil {
		t.Errorf("discount after DELETE: %+v", got.Discount)
	}
	_, err := sc.Subscriptions.DeleteDiscount(sub.ID, nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)

	var types []string
	it := sc.Events.List(&stripe.EventListParams{Type: stripe.String("customer.discount.*")})
	for it.Next() {
		types = append(types, string(it.Event().Type))
	}
	want := []string{"customer.discount.deleted", "customer.discount.created", "customer.discount.deleted",
		"customer.discount.created"} // newest first
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Errorf("discount events: %v, want %v", types, want)
	}
}

// TestRedemptionOverTime: a promotion code past its expires_at and a coupon past its redeem_by are refused, a
// deleted coupon is gone for new redemptions, all with Stripe's shapes.
func TestRedemptionOverTime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	_, sc := newClient(t, Options{Now: func() time.Time { return now }})
	_, pr := fixture(t, sc, 1000)
	cus := must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	dated := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10),
		RedeemBy: stripe.Int64(now.Unix() + 3600)}))
	pc := must(sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(dated.ID),
		Code: stripe.String("SOON"), ExpiresAt: stripe.Int64(now.Unix() + 600)}))
	_, err := sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(dated.ID),
		Code: stripe.String("LATER"), ExpiresAt: stripe.Int64(now.Unix() + 7200)})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Param != "expires_at" {
		t.Errorf("a code outliving its coupon: %+v", info)
	}
	now = now.Add(20 * time.Minute)
	_, err = subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(pc.ID) })
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Msg !=
		"This promotion code has expired." {
		t.Errorf("an expired code: %+v", info)
	}
	now = now.Add(time.Hour)
	_, err = subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(dated.ID) })
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeCouponExpired)
	if got := must(sc.Coupons.Get(dated.ID, nil)); got.Valid {
		t.Error("a coupon past its redeem_by is valid")
	}
	gone := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10)}))
	must(sc.Coupons.Del(gone.ID, nil))
	_, err = subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(gone.ID) })
	if info := stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing); info.Param !=
		"coupon" {
		t.Errorf("a deleted coupon: %+v", info)
	}
}
