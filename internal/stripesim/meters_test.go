package stripesim

import (
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

func newMeter(t *testing.T, sc *client.API, eventName, formula string) *stripe.BillingMeter {
	t.Helper()
	return must(sc.BillingMeters.New(&stripe.BillingMeterParams{DisplayName: stripe.String("API calls"),
		EventName:          stripe.String(eventName),
		DefaultAggregation: &stripe.BillingMeterDefaultAggregationParams{Formula: stripe.String(formula)},
		CustomerMapping: &stripe.BillingMeterCustomerMappingParams{EventPayloadKey: stripe.String("tenant"),
			Type: stripe.String("by_id")}}))
}

func sendMeterEvent(sc *client.API, name, customer, value string) error {
	_, err := sc.BillingMeterEvents.New(&stripe.BillingMeterEventParams{EventName: stripe.String(name),
		Payload: map[string]string{"tenant": customer, "value": value}})
	return err
}

// TestMeters: a meter is created with Stripe's defaults for its value key, its event name belongs to one meter,
// only its display name changes, it is deactivated and reactivated (each once), and every change is an event.
func TestMeters(t *testing.T) {
	_, sc := newClient(t, Options{})
	_, err := sc.BillingMeters.New(&stripe.BillingMeterParams{DisplayName: stripe.String("x"),
		EventName: stripe.String("api_call")})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameter_missing"); e.Param != "default_aggregation" {
		t.Errorf("missing default_aggregation: %+v", e)
	}
	m := newMeter(t, sc, "api_call", "sum")
	if !strings.HasPrefix(m.ID, "mtr_") || m.Status != stripe.BillingMeterStatusActive ||
		m.CustomerMapping.EventPayloadKey != "tenant" || m.ValueSettings.EventPayloadKey != "value" ||
		m.DefaultAggregation.Formula != stripe.BillingMeterDefaultAggregationFormulaSum {
		t.Fatalf("created: %+v", m)
	}
	_, err = sc.BillingMeters.New(&stripe.BillingMeterParams{DisplayName: stripe.String("again"),
		EventName:          stripe.String("api_call"),
		DefaultAggregation: &stripe.BillingMeterDefaultAggregationParams{Formula: stripe.String("count")}})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "resource_already_exists"); e.Param != "event_name" ||
		!strings.Contains(e.Msg, m.ID) {
		t.Errorf("a second meter for one event name: %+v", e)
	}
	up := must(sc.BillingMeters.Update(m.ID, &stripe.BillingMeterParams{DisplayName: stripe.String("Calls")}))
	if up.DisplayName != "Calls" || up.EventName != "api_call" {
		t.Errorf("update: %+v", up)
	}
	_, err = sc.BillingMeters.Update(m.ID, &stripe.BillingMeterParams{EventName: stripe.String("other")})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.HasPrefix(e.Msg,
		"Received unknown parameter: ") {
		t.Errorf("event_name changed: %+v", e)
	}
	off := must(sc.BillingMeters.Deactivate(m.ID, nil))
	if off.Status != stripe.BillingMeterStatusInactive || off.StatusTransitions.DeactivatedAt == 0 {
		t.Errorf("deactivated: %+v", off)
	}
	_, err = sc.BillingMeters.Deactivate(m.ID, nil)
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	inactive := must(sc.BillingMeters.List(&stripe.BillingMeterListParams{Status: stripe.String("inactive")}).
		BillingMeterList(), nil)
	if len(inactive.Data) != 1 || inactive.Data[0].ID != m.ID {
		t.Errorf("inactive meters: %+v", inactive.Data)
	}
	on := must(sc.BillingMeters.Reactivate(m.ID, nil))
	if on.Status != stripe.BillingMeterStatusActive || on.StatusTransitions.DeactivatedAt != 0 {
		t.Errorf("reactivated: %+v", on)
	}
	if got, want := eventsOf(t, sc, "billing.meter."), "billing.meter.created,billing.meter.updated,"+
		"billing.meter.deactivated,billing.meter.reactivated"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

// TestMeterEvents: meter events are refused for an unknown or inactive meter, without the customer key, for an
// unknown customer, with a value that is not a whole number or a repeated identifier; accepted ones are summed per
// customer.
func TestMeterEvents(t *testing.T) {
	_, sc := newClient(t, Options{})
	m := newMeter(t, sc, "gb_stored", "sum")
	a := must(sc.Customers.New(&stripe.CustomerParams{}))
	b := must(sc.Customers.New(&stripe.CustomerParams{}))
	for _, c := range []struct {
		name, customer, value, param, msg string
		status                            int
	}{
		{"nothing", a.ID, "1", "event_name", "No active meter", 400},
		{"gb_stored", "", "1", "payload", "Missing the customer mapping key `tenant`", 400},
		{"gb_stored", "cus_nobody", "1", "payload[tenant]", "No such customer", 404},
		{"gb_stored", a.ID, "1.5", "payload[value]", "must be a whole number", 400},
	} {
		err := sendMeterEvent(sc, c.name, c.customer, c.value)
		if e := stripeErr(t, err, c.status, stripe.ErrorTypeInvalidRequest, ""); e.Param != c.param ||
			!strings.Contains(e.Msg, c.msg) {
			t.Errorf("%+v: %+v", c, e)
		}
	}
	for _, v := range []string{"3", "4"} {
		if err := sendMeterEvent(sc, "gb_stored", a.ID, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := sendMeterEvent(sc, "gb_stored", b.ID, "10"); err != nil {
		t.Fatal(err)
	}
	p := &stripe.BillingMeterEventParams{EventName: stripe.String("gb_stored"), Identifier: stripe.String("once"),
		Payload: map[string]string{"tenant": a.ID, "value": "5"}}
	ev := must(sc.BillingMeterEvents.New(p))
	if ev.Identifier != "once" || ev.Payload["value"] != "5" {
		t.Errorf("meter event: %+v", ev)
	}
	p.IdempotencyKey = nil
	_, err := sc.BillingMeterEvents.New(p)
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "resource_already_exists"); e.Param != "identifier" {
		t.Errorf("a repeated identifier: %+v", e)
	}
	must(sc.BillingMeters.Deactivate(m.ID, nil))
	err = sendMeterEvent(sc, "gb_stored", a.ID, "1")
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); !strings.Contains(e.Msg, "is inactive") {
		t.Errorf("an event for an inactive meter: %+v", e)
	}
}

// TestMeteredSubscriptionBillsUsage: a metered price bills nothing up front and, when the test clock passes the
// period's end, the usage its meter summed for the customer over the period (other customers' usage and events
// of the next period are not on it), priced per unit; a metered item takes no quantity.
func TestMeteredSubscriptionBillsUsage(t *testing.T) {
	_, sc := newClient(t, Options{})
	m := newMeter(t, sc, "api_call", "sum")
	clock, cus, _ := clockFixture(t, sc, "pm_card_visa")
	other := must(sc.Customers.New(&stripe.CustomerParams{}))
	prod := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("API")}))
	_, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(5), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"),
			Meter: stripe.String(m.ID)}})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "recurring[meter]" {
		t.Errorf("a meter on a licensed price: %+v", e)
	}
	pr := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(5), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"),
			UsageType: stripe.String("metered"), Meter: stripe.String(m.ID)}}))
	if pr.Recurring.Meter != m.ID {
		t.Fatalf("price: %+v", pr.Recurring)
	}
	_, err = subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) { p.Items[0].Quantity = stripe.Int64(2) })
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "items[0][quantity]" {
		t.Errorf("a quantity on a metered item: %+v", e)
	}
	sub := must(subscribe(t, sc, cus, pr, nil))
	if sub.Status != stripe.SubscriptionStatusActive || sub.LatestInvoice.AmountDue != 0 {
		t.Fatalf("first invoice of a metered subscription: %s %d", sub.Status, sub.LatestInvoice.AmountDue)
	}
	_, err = sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{
		{ID: stripe.String(sub.Items.Data[0].ID), Quantity: stripe.Int64(3)}}})
	if e := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, ""); e.Param != "items[0][quantity]" {
		t.Errorf("a quantity set on a metered item: %+v", e)
	}
	for _, v := range []string{"100", "250"} {
		if err := sendMeterEvent(sc, "api_call", cus.ID, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := sendMeterEvent(sc, "api_call", other.ID, "999"); err != nil {
		t.Fatal(err)
	}
	advance(t, sc, clock, sub.CurrentPeriodEnd+60)
	// Usage of the new period belongs to the next invoice.
	if err := sendMeterEvent(sc, "api_call", cus.ID, "7"); err != nil {
		t.Fatal(err)
	}
	got := subStatus(t, sc, sub.ID)
	in := got.LatestInvoice
	if in.ID == sub.LatestInvoice.ID || in.BillingReason != stripe.InvoiceBillingReasonSubscriptionCycle {
		t.Fatalf("no renewal invoice: %+v", in)
	}
	if in.AmountDue != 350*5 || !in.Paid || len(in.Lines.Data) != 1 || in.Lines.Data[0].Quantity != 350 ||
		in.Lines.Data[0].Period.Start != sub.CurrentPeriodStart || in.Lines.Data[0].Period.End != sub.CurrentPeriodEnd {
		t.Errorf("renewal invoice: due %d paid %v lines %+v", in.AmountDue, in.Paid, in.Lines.Data[0])
	}
}
