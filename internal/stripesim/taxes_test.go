package stripesim

import (
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

func newTaxRate(t *testing.T, sc *client.API, pct float64, inclusive bool) *stripe.TaxRate {
	t.Helper()
	return must(sc.TaxRates.New(&stripe.TaxRateParams{DisplayName: stripe.String("VAT"),
		Percentage: stripe.Float64(pct), Inclusive: stripe.Bool(inclusive), Country: stripe.String("DE"),
		TaxType: stripe.String("vat")}))
}

// eventsOf are the recorded event types starting with prefix, oldest first.
func eventsOf(t *testing.T, sc *client.API, prefix string) string {
	t.Helper()
	var out []string
	for _, typ := range eventTypes(t, sc) {
		if strings.HasPrefix(typ, prefix) {
			out = append(out, typ)
		}
	}
	return strings.Join(out, ",")
}

// TestTaxRates: a tax rate is created with its required parameters, its mutable fields change in place, its
// percentage and inclusive cannot change (Stripe's unknown parameter), it is archived rather than deleted, and
// every change is an event.
func TestTaxRates(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, err := sc.TaxRates.New(&stripe.TaxRateParams{DisplayName: stripe.String("VAT"),
		Inclusive: stripe.Bool(false)})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); e.Param != "percentage" {
		t.Errorf("missing percentage: %+v", e)
	}
	_, err = sc.TaxRates.New(&stripe.TaxRateParams{DisplayName: stripe.String("VAT"),
		Inclusive: stripe.Bool(false), Percentage: stripe.Float64(120)})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "percentage" {
		t.Errorf("a percentage over 100: %+v", e)
	}
	r := newTaxRate(t, sc, 19, false)
	if r.Percentage != 19 || r.Inclusive || !r.Active || r.Country != "DE" || r.TaxType != "vat" ||
		!strings.HasPrefix(r.ID, "txr_") {
		t.Fatalf("created: %+v", r)
	}
	up, err := sc.TaxRates.Update(r.ID, &stripe.TaxRateParams{DisplayName: stripe.String("USt"),
		Jurisdiction: stripe.String("DE"), Active: stripe.Bool(false)})
	if err != nil || up.DisplayName != "USt" || up.Jurisdiction != "DE" || up.Active {
		t.Fatalf("update: %+v %v", up, err)
	}
	for _, p := range []*stripe.TaxRateParams{{Percentage: stripe.Float64(20)}, {Inclusive: stripe.Bool(true)}} {
		_, err := sc.TaxRates.Update(r.ID, p)
		e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		if !strings.HasPrefix(e.Msg, "Received unknown parameter: ") {
			t.Errorf("an immutable field changed: %+v", e)
		}
	}
	if got := must(sc.TaxRates.Get(r.ID, nil)); got.Percentage != 19 || got.Active {
		t.Errorf("after refused updates: %+v", got)
	}
	second := newTaxRate(t, sc, 7, true)
	var active []string
	it := sc.TaxRates.List(&stripe.TaxRateListParams{Active: stripe.Bool(true)})
	for it.Next() {
		active = append(active, it.TaxRate().ID)
	}
	if len(active) != 1 || active[0] != second.ID {
		t.Errorf("active tax rates: %v", active)
	}
	if got := eventsOf(t, sc, "tax_rate."); got != "tax_rate.created,tax_rate.updated,tax_rate.created" {
		t.Errorf("events: %v", got)
	}
}

// TestInvoiceTaxes: an invoice applies its items' tax rates, else the subscription's defaults, after the line
// amounts: an exclusive rate adds its percentage to the amount due, an inclusive one is part of the amount; the
// totals, the lines' tax amounts and total_tax_amounts say so. An archived rate cannot be newly applied.
func TestInvoiceTaxes(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, seats := fixture(t, sc, 1000)
	addOn := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(seats.Product.ID),
		Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1200),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}))
	vat := newTaxRate(t, sc, 19, false)
	included := newTaxRate(t, sc, 20, true)
	cus := must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	p := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		DefaultTaxRates: stripe.StringSlice([]string{vat.ID}),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(seats.ID), Quantity: stripe.Int64(2)},
			{Price: stripe.String(addOn.ID), TaxRates: stripe.StringSlice([]string{included.ID})}}}
	p.AddExpand("latest_invoice")
	sub := must(sc.Subscriptions.New(p))
	if len(sub.DefaultTaxRates) != 1 || sub.DefaultTaxRates[0].ID != vat.ID ||
		len(sub.Items.Data[1].TaxRates) != 1 || sub.Items.Data[1].TaxRates[0].ID != included.ID {
		t.Fatalf("subscription tax rates: %+v %+v", sub.DefaultTaxRates, sub.Items.Data[1].TaxRates)
	}
	in := sub.LatestInvoice
	// 2 × 10.00 at 19% exclusive: 3.80 tax; 12.00 including 20%: 10.00 and 2.00 tax.
	if in.Subtotal != 3200 || in.Tax != 580 || in.Total != 3580 || in.AmountDue != 3580 || in.AmountPaid != 3580 ||
		in.TotalExcludingTax != 3000 || in.SubtotalExcludingTax != 3000 {
		t.Errorf("totals: subtotal %d tax %d total %d due %d paid %d excl %d", in.Subtotal, in.Tax, in.Total,
			in.AmountDue, in.AmountPaid, in.TotalExcludingTax)
	}
	if len(in.TotalTaxAmounts) != 2 || in.TotalTaxAmounts[0].TaxRate.ID != vat.ID ||
		in.TotalTaxAmounts[0].Amount != 380 || in.TotalTaxAmounts[0].Inclusive ||
		in.TotalTaxAmounts[0].TaxableAmount != 2000 || in.TotalTaxAmounts[1].TaxRate.ID != included.ID ||
		in.TotalTaxAmounts[1].Amount != 200 || !in.TotalTaxAmounts[1].Inclusive ||
		in.TotalTaxAmounts[1].TaxableAmount != 1000 {
		t.Errorf("total_tax_amounts: %+v %+v", in.TotalTaxAmounts[0], in.TotalTaxAmounts[1])
	}
	if l := in.Lines.Data[1]; len(l.TaxAmounts) != 1 || l.TaxAmounts[0].Amount != 200 || l.AmountExcludingTax != 1000 {
		t.Errorf("the inclusive line: %+v", l)
	}

	// The default rate moves to a successor: the next invoice carries it.
	successor := newTaxRate(t, sc, 21, false)
	must(sc.TaxRates.Update(vat.ID, &stripe.TaxRateParams{Active: stripe.Bool(false)}))
	upd := must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		DefaultTaxRates: stripe.StringSlice([]string{successor.ID})}))
	if upd.DefaultTaxRates[0].ID != successor.ID {
		t.Fatalf("default tax rates after the update: %+v", upd.DefaultTaxRates)
	}
	// An archived rate is not newly applied; one already set may stay.
	_, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		DefaultTaxRates: stripe.StringSlice([]string{vat.ID})})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "default_tax_rates[0]" {
		t.Errorf("an archived rate applied: %+v", e)
	}
	_, err = sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		DefaultTaxRates: stripe.StringSlice([]string{"txr_nothing"})})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, "resource_missing")
}

// TestInvoiceTaxExempt: a tax-exempt customer's invoice carries the rates with no tax and the reason.
func TestInvoiceTaxExempt(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, seats := fixture(t, sc, 1000)
	successor := newTaxRate(t, sc, 21, false)
	exempt := must(sc.Customers.New(&stripe.CustomerParams{TaxExempt: stripe.String("exempt"),
		PaymentMethod:   stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	if exempt.TaxExempt != "exempt" {
		t.Fatalf("tax_exempt: %q", exempt.TaxExempt)
	}
	p := &stripe.SubscriptionParams{Customer: stripe.String(exempt.ID),
		DefaultTaxRates: stripe.StringSlice([]string{successor.ID}),
		Items:           []*stripe.SubscriptionItemsParams{{Price: stripe.String(seats.ID)}}}
	p.AddExpand("latest_invoice")
	in := must(sc.Subscriptions.New(p)).LatestInvoice
	if in.Tax != 0 || in.Total != 1000 || len(in.TotalTaxAmounts) != 1 ||
		in.TotalTaxAmounts[0].TaxabilityReason != "customer_exempt" || in.CustomerTaxExempt == nil || *in.CustomerTaxExempt != "exempt" {
		t.Errorf("exempt invoice: tax %d total %d %+v", in.Tax, in.Total, in.TotalTaxAmounts)
	}
}

// TestTaxIDs: a customer's tax IDs are created in Stripe's formats (a malformed value is tax_id_invalid, with
// Stripe's message), verified as Stripe's test values are, listed, included in the customer when asked for, shown
// on invoices, and deleted; each step is an event.
func TestTaxIDs(t *testing.T) {
	_, sc := newClient(t, Options{})
	cus := must(sc.Customers.New(&stripe.CustomerParams{}))
	for _, tc := range []struct{ typ, good, bad, country, verification string }{
		{"eu_vat", "DE000000000", "DE12", "DE", "verified"},
		{"gb_vat", "GB111111111", "GB12345", "GB", "unverified"},
		{"us_ein", "12-3456789", "123456789", "US", "unavailable"},
		{"au_abn", "12345678912", "1234", "AU", "pending"},
	} {
		_, err := sc.TaxIDs.New(&stripe.TaxIDParams{Customer: stripe.String(cus.ID), Type: stripe.String(tc.typ),
			Value: stripe.String(tc.bad)})
		e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "tax_id_invalid")
		if e.Msg != "Invalid value for "+tc.typ+"." || e.Param != "value" {
			t.Errorf("%s %s: %+v", tc.typ, tc.bad, e)
		}
		created, err := sc.TaxIDs.New(&stripe.TaxIDParams{Customer: stripe.String(cus.ID),
			Type: stripe.String(tc.typ), Value: stripe.String(tc.good)})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.typ, tc.good, err)
		}
		if created.Country != tc.country || created.Customer.ID != cus.ID {
			t.Errorf("%s: %+v", tc.typ, created)
		}
		got := must(sc.TaxIDs.Get(created.ID, &stripe.TaxIDParams{Customer: stripe.String(cus.ID)}))
		if string(got.Verification.Status) != tc.verification {
			t.Errorf("%s %s verification %s, want %s", tc.typ, tc.good, got.Verification.Status, tc.verification)
		}
	}
	p := &stripe.CustomerParams{}
	p.AddExpand("tax_ids")
	withIDs := must(sc.Customers.Get(cus.ID, p))
	if withIDs.TaxIDs == nil || len(withIDs.TaxIDs.Data) != 4 || withIDs.TaxIDs.Data[0].Type != "eu_vat" {
		t.Fatalf("customer tax_ids: %+v", withIDs.TaxIDs)
	}
	// A deleted customer is answered as it is, whatever expand[] asks for.
	gone := must(sc.Customers.New(&stripe.CustomerParams{}))
	must(sc.Customers.Del(gone.ID, nil))
	if got := must(sc.Customers.Get(gone.ID, p)); !got.Deleted || got.TaxIDs != nil {
		t.Errorf("a deleted customer with expand[]=tax_ids: %+v", got)
	}
	deleted := must(sc.TaxIDs.Del(withIDs.TaxIDs.Data[0].ID, &stripe.TaxIDParams{Customer: stripe.String(cus.ID)}))
	if !deleted.Deleted {
		t.Errorf("deleted: %+v", deleted)
	}
	_, err := sc.TaxIDs.Del(deleted.ID, &stripe.TaxIDParams{Customer: stripe.String(cus.ID)})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, "resource_missing")
	n := 0
	it := sc.TaxIDs.List(&stripe.TaxIDListParams{Customer: stripe.String(cus.ID)})
	for it.Next() {
		n++
	}
	if n != 3 {
		t.Errorf("%d tax IDs listed after a deletion, want 3", n)
	}
	// Tax IDs given with a customer's creation are created with it; a malformed one refuses the creation, and so
	// does an empty list (stripe-go sends it as tax_id_data=).
	_, err = sc.Customers.New(&stripe.CustomerParams{TaxIDData: []*stripe.CustomerTaxIDDataParams{}})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "tax_id_data" {
		t.Errorf("an empty tax_id_data: %+v", e)
	}
	_, err = sc.Customers.New(&stripe.CustomerParams{TaxIDData: []*stripe.CustomerTaxIDDataParams{
		{Type: stripe.String("au_abn"), Value: stripe.String("12345678912")},
		{Type: stripe.String("gb_vat"), Value: stripe.String("GB1")}}})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "tax_id_invalid"); e.Param != "tax_id_data[1][value]" {
		t.Errorf("a malformed tax_id_data: %+v", e)
	}
	p = &stripe.CustomerParams{TaxIDData: []*stripe.CustomerTaxIDDataParams{
		{Type: stripe.String("us_ein"), Value: stripe.String("98-7654321")}}}
	p.AddExpand("tax_ids")
	withData := must(sc.Customers.New(p))
	if withData.TaxIDs == nil || len(withData.TaxIDs.Data) != 1 || withData.TaxIDs.Data[0].Value != "98-7654321" {
		t.Errorf("tax_id_data: %+v", withData.TaxIDs)
	}
	want := "customer.tax_id.created,customer.tax_id.updated,customer.tax_id.created,customer.tax_id.updated," +
		"customer.tax_id.created,customer.tax_id.created,customer.tax_id.deleted,customer.tax_id.created"
	if got := eventsOf(t, sc, "customer.tax_id."); got != want {
		t.Errorf("events: %v", got)
	}
}

// TestInvoiceTaxAfterDiscount: Stripe's order on an invoice is the lines' subtotal, then discounts, then taxes, then
// the total: an exclusive rate is charged on the discounted amount, and an inclusive one is part of it.
func TestInvoiceTaxAfterDiscount(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, pr := fixture(t, sc, 1000)
	coupon := must(sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(20),
		Duration: stripe.String("forever")}))
	for _, tc := range []struct {
		inclusive               bool
		tax, total, excludingTx int64
	}{
		// 10.00 less 20% is 8.00; 10% on top is 0.80.
		{inclusive: false, tax: 80, total: 880, excludingTx: 800},
		// 8.00 includes 10%: 7.27 and 0.73 of tax.
		{inclusive: true, tax: 73, total: 800, excludingTx: 727},
	} {
		rate := newTaxRate(t, sc, 10, tc.inclusive)
		cus := must(sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
		p := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID), Coupon: stripe.String(coupon.ID),
			DefaultTaxRates: stripe.StringSlice([]string{rate.ID}),
			Items:           []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}}
		p.AddExpand("latest_invoice")
		in := must(sc.Subscriptions.New(p)).LatestInvoice
		var discount int64
		for _, d := range in.TotalDiscountAmounts {
			discount += d.Amount
		}
		if in.Subtotal != 1000 || discount != 200 || in.Tax != tc.tax || in.Total != tc.total ||
			in.AmountDue != tc.total || in.TotalExcludingTax != tc.excludingTx ||
			in.TotalTaxAmounts[0].TaxableAmount != tc.excludingTx {
			t.Errorf("inclusive=%v: subtotal %d discount %d tax %d total %d due %d excluding tax %d taxable %d",
				tc.inclusive, in.Subtotal, discount, in.Tax, in.Total, in.AmountDue, in.TotalExcludingTax,
				in.TotalTaxAmounts[0].TaxableAmount)
		}
	}
}
