package stripesim

import (
	"testing"

	"github.com/stripe/stripe-go/v76"
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
