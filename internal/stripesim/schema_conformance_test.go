package stripesim

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripe-operator/stripe-operator/internal/stripesim/schemacheck"
)

// schemaScenario goes beyond the stripe-mock scenario through what only a stateful server can answer: invoices and
// their list, payment intents, charges and disputes, expansion, and errors.
func schemaScenario(t *testing.T, sim *Sim, sc *client.API) {
	t.Helper()
	must := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	cus, err := sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("s@example.com"),
		PaymentMethod:   stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}})
	must("create customer", err)
	prod, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("Schema")})
	must("create product", err)
	pr, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(1500), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	must("create price", err)
	incl := &stripe.PriceParams{}
	incl.AddExpand("tiers")
	incl.AddExpand("currency_options")
	_, err = sc.Prices.Get(pr.ID, incl)
	must("get price with tiers and currency_options", err)
	inline := &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(300),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Inline")}}
	inline.AddExpand("product")
	_, err = sc.Prices.New(inline)
	must("create price with product_data", err)
	sp := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID), Quantity: stripe.Int64(2)}}}
	sp.AddExpand("latest_invoice.payment_intent")
	sub, err := sc.Subscriptions.New(sp)
	must("create subscription", err)
	gp := &stripe.SubscriptionParams{}
	gp.AddExpand("latest_invoice.payment_intent.latest_charge")
	gp.AddExpand("customer")
	_, err = sc.Subscriptions.Get(sub.ID, gp)
	must("get subscription expanded", err)
	inv := sub.LatestInvoice
	if inv == nil || inv.ID == "" {
		t.Fatal("create subscription: no latest invoice")
	}
	ip := &stripe.InvoiceParams{}
	ip.AddExpand("payment_intent")
	got, err := sc.Invoices.Get(inv.ID, ip)
	must("get invoice expanded", err)
	_, err = sc.Invoices.Get(inv.ID, nil)
	must("get invoice", err)
	for _, lp := range []*stripe.InvoiceListParams{{Customer: stripe.String(cus.ID)},
		{Subscription: stripe.String(sub.ID)}, {Status: stripe.String("paid")}} {
		lp.AddExpand("data.payment_intent")
		it := sc.Invoices.List(lp)
		for it.Next() {
		}
		must("list invoices", it.Err())
	}
	if got.PaymentIntent == nil {
		t.Fatal("the invoice has no payment intent")
	}
	pi, err := sc.PaymentIntents.Get(got.PaymentIntent.ID, nil)
	must("get payment intent", err)
	_, err = sc.Charges.Get(pi.LatestCharge.ID, nil)
	must("get charge", err)
	d, err := sim.OpenDispute(DisputeRequest{Charge: pi.LatestCharge.ID})
	must("open dispute", err)
	_, err = sc.Disputes.Get(d["id"].(string), nil)
	must("get dispute", err)
	_, err = sim.CloseDispute(d["id"].(string), disputeLost)
	must("close dispute", err)

	// A declined renewal: payment intents and charges in their failed states.
	declined, err := sc.Customers.New(&stripe.CustomerParams{
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
			DefaultPaymentMethod: stripe.String("pm_card_chargeDeclined")}})
	must("create declining customer", err)
	dsub, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(declined.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}})
	must("create declined subscription", err)
	if dsub.LatestInvoice != nil {
		dip := &stripe.InvoiceParams{}
		dip.AddExpand("payment_intent.latest_charge")
		_, err = sc.Invoices.Get(dsub.LatestInvoice.ID, dip)
		must("get declined invoice", err)
	}
	sl := &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID)}
	sl.AddExpand("data.latest_invoice")
	it := sc.Subscriptions.List(sl)
	for it.Next() {
	}
	must("list subscriptions expanded", it.Err())
	el := sc.Events.List(&stripe.EventListParams{})
	for el.Next() {
	}
	must("list events", el.Err())

	// Payment methods: retrieve, list by customer both ways, attach, detach.
	full, err := sc.Customers.Get(cus.ID, nil)
	must("get customer", err)
	pmp := &stripe.PaymentMethodParams{}
	pmp.AddExpand("customer")
	_, err = sc.PaymentMethods.Get(full.InvoiceSettings.DefaultPaymentMethod.ID, pmp)
	must("get payment method", err)
	mc, err := sc.PaymentMethods.Attach("pm_card_mastercard",
		&stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)})
	must("attach payment method", err)
	pl := sc.PaymentMethods.List(&stripe.PaymentMethodListParams{Customer: stripe.String(cus.ID),
		Type: stripe.String("card")})
	for pl.Next() {
	}
	must("list payment methods", pl.Err())
	cpl := sc.Customers.ListPaymentMethods(&stripe.CustomerListPaymentMethodsParams{Customer: stripe.String(cus.ID)})
	for cpl.Next() {
	}
	must("list customer payment methods", cpl.Err())
	_, err = sc.PaymentMethods.Detach(mc.ID, nil)
	must("detach payment method", err)
	_, err = sc.PaymentMethods.Detach(mc.ID, nil)
	wantStatus(t, "detach a detached payment method", err, 400)

	// Errors: every one is Stripe's error object.
	_, err = sc.Customers.Get("cus_missing", nil)
	wantStatus(t, "get a missing customer", err, 404)
	_, err = sc.Invoices.Get("in_missing", nil)
	wantStatus(t, "get a missing invoice", err, 404)
	bad := &stripe.CustomerParams{}
	bad.AddExtra("favourite_colour", "blue")
	_, err = sc.Customers.New(bad)
	wantStatus(t, "an unknown parameter", err, 400)
	_, err = sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(declined.ID),
		Items:           []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}},
		PaymentBehavior: stripe.String("error_if_incomplete")})
	wantStatus(t, "a declined card", err, 402)
}

func wantStatus(t *testing.T, name string, err error, status int) {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != status {
		t.Fatalf("%s: want a %d, got %v", name, status, err)
	}
}

// TestSchemaConformance records every response the simulator sends while the broad scenarios run and validates
// each against Stripe's 2023-10-16 specification, and every event's data.object against its object's schema.
func TestSchemaConformance(t *testing.T) {
	o := loadSpec(t)
	if o.Version() != apiVersion {
		t.Fatalf("the embedded specification is for %s, the simulator renders %s", o.Version(), apiVersion)
	}
	sim := New(Options{RateLimitOff: true, Seed: 7})
	t.Cleanup(sim.Close)
	rec := schemacheck.NewRecorder(sim)
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	sc := stripeClient(srv.URL, "sk_test_123")
	if err := scenario(sc); err != nil {
		t.Fatalf("scenario: %v", err)
	}
	schemaScenario(t, sim, sc)

	exchanges := rec.Exchanges()
	all := make([]schemacheck.Violation, 0, len(exchanges))
	for _, ex := range exchanges {
		all = append(all, o.ValidateResponse(ex)...)
	}
	for _, obj := range sim.EventObjects() {
		name, _ := obj["object"].(string)
		all = append(all, o.ValidateObject("event data.object "+name, obj)...)
	}
	report(t, len(exchanges), all)
}

// loadSpec is the parsed specification, for a test.
func loadSpec(t testing.TB) *schemacheck.Spec {
	t.Helper()
	o, err := schemacheck.Load()
	if err != nil {
		t.Fatalf("loading the OpenAPI specification: %v", err)
	}
	return o
}

// report fails with the distinct violations, each once with how often it occurred.
func report(t *testing.T, responses int, all []schemacheck.Violation) {
	t.Helper()
	keys, counts := schemacheck.Distinct(all)
	t.Logf("%d responses validated, %d violations (%d distinct)", responses, len(all), len(keys))
	if len(all) > 0 {
		var b strings.Builder
		for _, k := range keys {
			b.WriteString("\n  ")
			b.WriteString(k)
			if counts[k] > 1 {
				b.WriteString(" (x")
				b.WriteString(strconv.Itoa(counts[k]))
				b.WriteString(")")
			}
		}
		t.Errorf("responses violate Stripe's 2023-10-16 specification:%s", b.String())
	}
}

// TestValidatorCatches proves the validator finds a wrong type, a missing field, an unexpanded field, a value
// outside an enumeration and a field the fixture has but the object lacks, and passes Stripe's own examples.
func TestValidatorCatches(t *testing.T) {
	o := loadSpec(t)
	fixture := o.Fixture
	respond := func(method, path string, params string, body map[string]any) []schemacheck.Violation {
		raw, _ := json.Marshal(body)
		q, _ := url.ParseQuery(params)
		return o.ValidateResponse(schemacheck.Exchange{Method: method, Path: path, Params: q, Status: 200, Body: raw})
	}
	for _, name := range []string{"customer", "subscription", "invoice", "payment_intent", "charge", "price"} {
		if vs := o.ValidateObject(name, fixture(name)); len(vs) > 0 {
			t.Errorf("Stripe's own %s fixture fails: %v", name, vs)
		}
	}
	cases := []struct {
		name, method, path, params string
		mutate                     func(map[string]any)
		fixture, want              string
	}{
		{"wrong type", "GET", "/v1/customers/cus_1", "", func(m map[string]any) { m["balance"] = "12" },
			"customer", `$.balance: want an integer, got a string`},
		{"missing required field", "GET", "/v1/invoices/in_1", "", func(m map[string]any) { delete(m, "total") },
			"invoice", `missing required field "total"`},
		{"missing fixture field", "GET", "/v1/customers/cus_1", "",
			func(m map[string]any) { delete(m, "invoice_prefix") }, "customer",
			"customer lacks fields Stripe renders: invoice_prefix"},
		{"unexpanded field", "GET", "/v1/subscriptions/sub_1", "expand[0]=latest_invoice",
			func(m map[string]any) { m["latest_invoice"] = "in_1" }, "subscription",
			"an ID, but expand[] asked for latest_invoice"},
		{"unexpanded nested field", "GET", "/v1/subscriptions/sub_1", "expand[]=latest_invoice.payment_intent",
			func(m map[string]any) {
				in := fixture("invoice")
				in["payment_intent"] = "pi_1"
				m["latest_invoice"] = in
			}, "subscription", "an ID, but expand[] asked for latest_invoice.payment_intent"},
		{"not in the enumeration", "GET", "/v1/subscriptions/sub_1", "",
			func(m map[string]any) { m["status"] = "sleeping" }, "subscription", `"sleeping" is not one of`},
		{"null where not nullable", "GET", "/v1/prices/price_1", "",
			func(m map[string]any) { m["currency"] = nil }, "price", "$.currency: null, but the field is not nullable"},
		{"unknown field", "GET", "/v1/prices/price_1", "",
			func(m map[string]any) { m["seq"] = 3 }, "price", `unknown field "seq"`},
	}
	for _, tc := range cases {
		body := fixture(tc.fixture)
		if vs := respond(tc.method, tc.path, tc.params, body); len(vs) > 0 && tc.name != "unexpanded field" &&
			tc.name != "unexpanded nested field" {
			t.Fatalf("%s: the unchanged fixture fails: %v", tc.name, vs)
		}
		tc.mutate(body)
		vs := respond(tc.method, tc.path, tc.params, body)
		if !slices.ContainsFunc(vs, func(v schemacheck.Violation) bool { return strings.Contains(v.String(), tc.want) }) {
			t.Errorf("%s: want a violation containing %q, got %v", tc.name, tc.want, vs)
		}
	}
}
