package stripesim

import (
	"slices"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/stripesim/schemacheck"
)

// TestNestedExpand: expand[] reaches four levels through IDs and lists, refuses a fifth and fields that hold no
// ID, and never changes the events the request emitted.
func TestNestedExpand(t *testing.T) {
	sim, sc := newClient(t, Options{})
	cus, err := sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}})
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := sc.Products.New(&stripe.ProductParams{Name: stripe.String("X")})
	pr, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(700), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	sp := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}}
	sp.AddExpand("latest_invoice.payment_intent.latest_charge.customer")
	sub, err := sc.Subscriptions.New(sp)
	if err != nil {
		t.Fatalf("four levels: %v", err)
	}
	ch := sub.LatestInvoice.PaymentIntent.LatestCharge
	if ch == nil || ch.Customer == nil || ch.Customer.Email != cus.Email || ch.Amount != 700 ||
		ch.Customer.ID != cus.ID || ch.Customer.Created == 0 {
		t.Fatalf("latest_invoice.payment_intent.latest_charge.customer not expanded: %+v", ch)
	}
	if sub.LatestInvoice.PaymentIntent.PaymentMethod == nil ||
		sub.LatestInvoice.PaymentIntent.PaymentMethod.ID != cus.InvoiceSettings.DefaultPaymentMethod.ID {
		t.Fatalf("the payment intent was not charged to the customer's default payment method")
	}
	// The event of the creation carries IDs, as Stripe's events do.
	sim.mu.Lock()
	for _, st := range sim.stores {
		for _, ev := range st.events {
			if ev.Type == "customer.subscription.created" {
				if _, isID := ev.Object["latest_invoice"].(string); !isID {
					t.Errorf("the event's latest_invoice is expanded: %v", ev.Object["latest_invoice"])
				}
			}
		}
	}
	sim.mu.Unlock()

	ip := &stripe.InvoiceParams{}
	ip.AddExpand("payment_intent")
	ip.AddExpand("subscription.customer")
	in, err := sc.Invoices.Get(sub.LatestInvoice.ID, ip)
	if err != nil || in.PaymentIntent.Status != "succeeded" || in.Subscription.Customer.ID != cus.ID ||
		in.Subscription.Customer.Created == 0 {
		t.Fatalf("invoice expansion: %v %+v", err, in)
	}
	lp := &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID)}
	lp.AddExpand("data.latest_invoice.payment_intent")
	it := sc.Subscriptions.List(lp)
	if !it.Next() || it.Subscription().LatestInvoice.PaymentIntent.Amount != 700 {
		t.Fatalf("list expansion through data: %v", it.Err())
	}

	for _, bad := range []string{"latest_invoice.payment_intent.latest_charge.customer.test_clock",
		"currency", "items.data.price.currency", "nonexistent"} {
		gp := &stripe.SubscriptionParams{}
		gp.AddExpand(bad)
		_, err := sc.Subscriptions.Get(sub.ID, gp)
		if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Param != "expand" {
			t.Errorf("expand %s: want param expand, got %+v", bad, info)
		}
	}
}

// TestExpandRefusesWhatStripeRefuses: expand[] naming a field that does not exist, or one Stripe does not let be
// expanded (metadata, a plain value), is a 400 invalid_request_error on param expand worded as Stripe words it, on
// a retrieve, a create (which then creates nothing) and through a list's data; a price's tiers and
// currency_options, which Stripe includes when asked, are included.
func TestExpandRefusesWhatStripeRefuses(t *testing.T) {
	_, sc := newClient(t, Options{})
	prod, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("X")})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("eur"),
		UnitAmount: stripe.Int64(700), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"foo", "metadata", "currency", "nickname", "product.foo", "product.metadata",
		"tiers.up_to"} {
		gp := &stripe.PriceParams{}
		gp.AddExpand(bad)
		_, err := sc.Prices.Get(pr.ID, gp)
		info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		if info.Param != "expand" || info.Msg != "This property cannot be expanded ("+bad+")." {
			t.Errorf("expand[]=%s: want param expand and Stripe's wording, got %+v", bad, info)
		}
	}
	cp := &stripe.CustomerParams{Email: stripe.String("x@example.com")}
	cp.AddExpand("foo")
	_, err = sc.Customers.New(cp)
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); info.Msg !=
		"This property cannot be expanded (foo)." {
		t.Errorf("create with expand[]=foo: %+v", info)
	}
	if it := sc.Customers.List(&stripe.CustomerListParams{}); it.Next() {
		t.Errorf("a create refused for its expand[] created %s", it.Customer().ID)
	}
	lp := &stripe.PriceListParams{}
	lp.AddExpand("data.foo")
	it := sc.Prices.List(lp)
	if it.Next() {
		t.Fatal("expand[]=data.foo on a list: served")
	}
	stripeErr(t, it.Err(), 400, stripe.ErrorTypeInvalidRequest, "")

	gp := &stripe.PriceParams{}
	gp.AddExpand("tiers")
	gp.AddExpand("currency_options")
	gp.AddExpand("recurring")
	gp.AddExpand("product")
	got, err := sc.Prices.Get(pr.ID, gp)
	if err != nil {
		t.Fatalf("tiers, currency_options, recurring and product: %v", err)
	}
	if got.Tiers == nil || len(got.Tiers) != 0 || got.Product.Name != "X" || got.Recurring.Interval != "month" {
		t.Errorf("want an empty tiers list, the product and recurring: %+v", got)
	}
	if co := got.CurrencyOptions["eur"]; len(got.CurrencyOptions) != 1 || co == nil || co.UnitAmount != 700 ||
		co.UnitAmountDecimal != 700 || co.TaxBehavior != "unspecified" {
		t.Errorf("currency_options: want the price's own eur option, got %+v", got.CurrencyOptions)
	}
	plain, err := sc.Prices.Get(pr.ID, nil)
	if err != nil || plain.Tiers != nil || plain.CurrencyOptions != nil {
		t.Errorf("tiers and currency_options are left out unless asked for: %v %+v", err, plain)
	}
}

// TestExpandableFieldsAreTheSpecs: the fields stripesim lets expand[] name on each object are those the
// 2023-10-16 specification lists as expandable.
func TestExpandableFieldsAreTheSpecs(t *testing.T) {
	spec, err := schemacheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	for kind, fields := range expandableFields {
		if kind == "list" || kind == "search_result" {
			continue
		}
		want, ok := spec.ExpandableFields(kind)
		if !ok {
			t.Errorf("%s: not a resource of the specification", kind)
			continue
		}
		if !slices.Equal(slices.Sorted(slices.Values(fields)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: stripesim lets %v be expanded, the specification %v", kind, fields, want)
		}
	}
}
