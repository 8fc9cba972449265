package stripesim

import (
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// TestInvoiceList: GET /v1/invoices filters by customer, subscription and status, newest first, and an invoice's
// lines and totals match its amounts.
func TestInvoiceList(t *testing.T) {
	_, sc := newClient(t, Options{})
	prod, _ := sc.Products.New(&stripe.ProductParams{Name: stripe.String("Seats")})
	pr, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(1000), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	addOn, _ := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(250), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	subscribe := func(pm string) (*stripe.Customer, *stripe.Subscription) {
		cus, err := sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String(pm),
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm)}})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
			Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID), Quantity: stripe.Int64(3)},
				{Price: stripe.String(addOn.ID)}}})
		if err != nil {
			t.Fatal(err)
		}
		return cus, sub
	}
	paying, paid := subscribe("pm_card_visa")
	declining, unpaid := subscribe("pm_card_chargeDeclined")

	ids := func(p *stripe.InvoiceListParams) []string {
		var out []string
		it := sc.Invoices.List(p)
		for it.Next() {
			out = append(out, it.Invoice().ID)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		return out
	}
	if got := ids(&stripe.InvoiceListParams{}); len(got) != 2 || got[0] != unpaid.LatestInvoice.ID {
		t.Errorf("all invoices, newest first: %v", got)
	}
	if got := ids(&stripe.InvoiceListParams{Customer: stripe.String(paying.ID)}); len(got) != 1 ||
		got[0] != paid.LatestInvoice.ID {
		t.Errorf("by customer: %v", got)
	}
	if got := ids(&stripe.InvoiceListParams{Subscription: stripe.String(unpaid.ID)}); len(got) != 1 ||
		got[0] != unpaid.LatestInvoice.ID {
		t.Errorf("by subscription: %v", got)
	}
	if got := ids(&stripe.InvoiceListParams{Status: stripe.String("open"),
		Customer: stripe.String(declining.ID)}); len(got) != 1 {
		t.Errorf("open invoices of the declining customer: %v", got)
	}
	if got := ids(&stripe.InvoiceListParams{Status: stripe.String("paid"),
		Customer: stripe.String(declining.ID)}); len(got) != 0 {
		t.Errorf("paid invoices of the declining customer: %v", got)
	}
	it := sc.Invoices.List(&stripe.InvoiceListParams{Status: stripe.String("sleeping")})
	it.Next()
	stripeErr(t, it.Err(), 400, stripe.ErrorTypeInvalidRequest, "")

	in, err := sc.Invoices.Get(paid.LatestInvoice.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.Total != 3250 || in.Subtotal != 3250 || in.AmountDue != 3250 || in.AmountPaid != 3250 ||
		len(in.Lines.Data) != 2 || in.Lines.Data[0].Amount+in.Lines.Data[1].Amount != in.Total ||
		in.StatusTransitions.PaidAt == 0 || in.Number == "" || in.Charge == nil {
		t.Errorf("paid invoice: total %d subtotal %d due %d paid %d lines %d paid_at %d number %q charge %v",
			in.Total, in.Subtotal, in.AmountDue, in.AmountPaid, len(in.Lines.Data), in.StatusTransitions.PaidAt,
			in.Number, in.Charge)
	}
	for _, l := range in.Lines.Data {
		if l.Price == nil || l.Amount != l.Price.UnitAmount*l.Quantity || l.Type != "subscription" ||
			l.Period.Start != in.PeriodStart || l.Period.End != in.PeriodEnd {
			t.Errorf("line %+v does not match its price and the invoice's period", l)
		}
	}
}

// TestPriceProductData: POST /v1/prices with product_data creates the product with the price (product.created
// first), refuses product and product_data together, and needs product_data[name].
func TestPriceProductData(t *testing.T) {
	sim, sc := newClient(t, Options{})
	pp := &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(900),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Inline"), UnitLabel: stripe.String("seat")},
		Recurring:   &stripe.PriceRecurringParams{Interval: stripe.String("month")}}
	pp.AddExpand("product")
	pr, err := sc.Prices.New(pp)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Product == nil || pr.Product.Name != "Inline" || pr.Product.UnitLabel != "seat" || !pr.Product.Active {
		t.Fatalf("product_data: %+v", pr.Product)
	}
	got, err := sc.Products.Get(pr.Product.ID, nil)
	if err != nil || got.Name != "Inline" {
		t.Fatalf("the product is not stored: %v", err)
	}
	sim.mu.Lock()
	var types []string
	for _, st := range sim.stores {
		for _, ev := range st.events {
			types = append(types, ev.Type)
		}
	}
	sim.mu.Unlock()
	if len(types) != 2 || types[0] != "product.created" || types[1] != "price.created" {
		t.Errorf("events: %v", types)
	}
	_, err = sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1),
		Product: stripe.String(got.ID), ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Both")}})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	_, err = sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1),
		ProductData: &stripe.PriceProductDataParams{UnitLabel: stripe.String("x")}})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); info.Param !=
		"product_data[name]" {
		t.Errorf("want product_data[name] missing, got %+v", info)
	}
	_, err = sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Bad"),
			StatementDescriptor: stripe.String("<>")}})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Param !=
		"product_data[statement_descriptor]" {
		t.Errorf("want product_data[statement_descriptor], got %+v", info)
	}
}
