package stripesim

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripe-operator/stripe-operator/internal/stripesim/schemacheck"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// scenario is one stripe-go call sequence covering every endpoint the simulator serves. It must succeed against
// the simulator and against stripe-mock alike, and every response must decode into stripe-go's structs.
func scenario(sc *client.API) error {
	prod, price, err := catalogScenario(sc)
	if err != nil {
		return err
	}
	cus, err := customerScenario(sc)
	if err != nil {
		return err
	}
	if err := subscriptionScenario(sc, prod, price, cus); err != nil {
		return err
	}
	if err := paymentMethodScenario(sc, cus); err != nil {
		return err
	}
	if err := webhookScenario(sc); err != nil {
		return err
	}
	if err := portalScenario(sc, prod, price); err != nil {
		return err
	}
	empty, err := sc.Products.New(&stripe.ProductParams{Name: stripe.String("Empty")})
	if err != nil {
		return step("create empty product", err)
	}
	if _, err := sc.Products.Del(empty.ID, nil); err != nil {
		return step("delete product", err)
	}
	if _, err := sc.Customers.Del(cus.ID, nil); err != nil {
		return step("delete customer", err)
	}
	return nil
}

func step(name string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// paymentMethodScenario attaches a test card, lists the customer's payment methods both ways, detaches it, lists
// the customer's invoices and creates a price with product_data.
func paymentMethodScenario(sc *client.API, cus *stripe.Customer) error {
	pm, err := sc.PaymentMethods.Attach("pm_card_mastercard",
		&stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)})
	if err != nil {
		return step("attach payment method", err)
	}
	if _, err := sc.PaymentMethods.Get(pm.ID, nil); err != nil {
		return step("get payment method", err)
	}
	it := sc.PaymentMethods.List(&stripe.PaymentMethodListParams{Customer: stripe.String(cus.ID),
		Type: stripe.String("card")})
	if !it.Next() && it.Err() != nil {
		return step("list payment methods", it.Err())
	}
	cit := sc.Customers.ListPaymentMethods(&stripe.CustomerListPaymentMethodsParams{Customer: stripe.String(cus.ID),
		Type: stripe.String("card")})
	if !cit.Next() && cit.Err() != nil {
		return step("list customer payment methods", cit.Err())
	}
	if _, err := sc.PaymentMethods.Detach(pm.ID, nil); err != nil {
		return step("detach payment method", err)
	}
	iit := sc.Invoices.List(&stripe.InvoiceListParams{Customer: stripe.String(cus.ID), Status: stripe.String("paid")})
	if !iit.Next() && iit.Err() != nil {
		return step("list invoices", iit.Err())
	}
	if _, err := sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(500),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Inline")}}); err != nil {
		return step("create price with product_data", err)
	}
	return nil
}

// webhookScenario registers, changes, lists and deletes a webhook endpoint, and lists events. It sends api_version
// 2023-10-16, which stripe-mock v0.183.0's specification lists (v0.162.0's 2022-11-15 one did not).
func webhookScenario(sc *client.API) error {
	ep, err := sc.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String("https://example.com/hook"),
		EnabledEvents: stripe.StringSlice([]string{"customer.created", "invoice.paid"}),
		Description:   stripe.String("conformance"), APIVersion: stripe.String(stripe.APIVersion)})
	if err != nil {
		return step("create webhook endpoint", err)
	}
	if _, err := sc.WebhookEndpoints.Update(ep.ID, &stripe.WebhookEndpointParams{
		EnabledEvents: stripe.StringSlice([]string{"*"})}); err != nil {
		return step("update webhook endpoint", err)
	}
	if it := sc.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{}); !it.Next() && it.Err() != nil {
		return step("list webhook endpoints", it.Err())
	}
	elp := &stripe.EventListParams{Type: stripe.String("customer.created")}
	elp.Limit = stripe.Int64(3)
	elp.Single = true
	it := sc.Events.List(elp)
	if it.Err() != nil {
		return step("list events", it.Err())
	}
	if l := it.EventList(); l != nil && len(l.Data) > 0 {
		if _, err := sc.Events.Get(l.Data[0].ID, nil); err != nil {
			return step("get event", err)
		}
	}
	if _, err = sc.WebhookEndpoints.Del(ep.ID, nil); err != nil {
		return step("delete webhook endpoint", err)
	}
	clock, err := sc.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{
		FrozenTime: stripe.Int64(1_700_000_000), Name: stripe.String("conformance")})
	if err != nil {
		return step("create test clock", err)
	}
	if _, err := sc.Customers.New(&stripe.CustomerParams{TestClock: stripe.String(clock.ID)}); err != nil {
		return step("create customer on a test clock", err)
	}
	if _, err := sc.TestHelpersTestClocks.Advance(clock.ID, &stripe.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripe.Int64(1_700_086_400)}); err != nil {
		return step("advance test clock", err)
	}
	if _, err := sc.TestHelpersTestClocks.Get(clock.ID, nil); err != nil {
		return step("get test clock", err)
	}
	return nil
}

// catalogScenario creates a product and a price, rolls the price to a successor and archives the old one.
func catalogScenario(sc *client.API) (*stripe.Product, *stripe.Price, error) {
	prodParams := &stripe.ProductParams{Name: stripe.String("Pro"), Description: stripe.String("The pro plan"),
		UnitLabel: stripe.String("seat"), StatementDescriptor: stripe.String("ACME PRO")}
	prodParams.AddMetadata("k8s_uid", "uid-product")
	prodParams.SetIdempotencyKey("conformance-product")
	prod, err := sc.Products.New(prodParams)
	if err != nil {
		return nil, nil, step("create product", err)
	}
	priceParams := &stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(2000), LookupKey: stripe.String("conformance-pro"),
		Nickname: stripe.String("Pro"), TaxBehavior: stripe.String("exclusive"),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"), IntervalCount: stripe.Int64(1),
			UsageType: stripe.String("licensed")}}
	priceParams.AddMetadata("k8s_uid", "uid-price")
	pr, err := sc.Prices.New(priceParams)
	if err != nil {
		return nil, nil, step("create price", err)
	}
	successor, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID),
		Currency: stripe.String("usd"), UnitAmount: stripe.Int64(2500), LookupKey: stripe.String("conformance-pro"),
		TransferLookupKey: stripe.Bool(true), Recurring: &stripe.PriceRecurringParams{
			Interval: stripe.String("month")}})
	if err != nil {
		return nil, nil, step("create successor price", err)
	}
	if _, err := sc.Products.Update(prod.ID, &stripe.ProductParams{DefaultPrice: stripe.String(successor.ID),
		Name: stripe.String("Pro plan")}); err != nil {
		return nil, nil, step("update product", err)
	}
	upd := &stripe.PriceParams{Active: stripe.Bool(false), Nickname: stripe.String("Pro (old)")}
	upd.AddMetadata("rolled_to", successor.ID)
	if _, err := sc.Prices.Update(pr.ID, upd); err != nil {
		return nil, nil, step("archive price", err)
	}
	if _, err := sc.Prices.Get(pr.ID, nil); err != nil {
		return nil, nil, step("get price", err)
	}
	lp := &stripe.PriceListParams{LookupKeys: stripe.StringSlice([]string{"conformance-pro"}),
		Product: stripe.String(prod.ID), Active: stripe.Bool(true)}
	if it := sc.Prices.List(lp); it.Next() || it.Err() != nil {
		if err := it.Err(); err != nil {
			return nil, nil, step("list prices", err)
		}
	}
	return prod, successor, nil
}

// customerScenario creates, updates, lists and searches a customer.
func customerScenario(sc *client.API) (*stripe.Customer, error) {

	cusParams := &stripe.CustomerParams{Email: stripe.String("c@example.com"), Name: stripe.String("Acme"),
		Description: stripe.String("tenant"), Phone: stripe.String("+15555550100"),
		Address: &stripe.AddressParams{Line1: stripe.String("1 Main St"), City: stripe.String("Springfield"),
			PostalCode: stripe.String("12345"), Country: stripe.String("US")},
		PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
			DefaultPaymentMethod: stripe.String("pm_card_visa")}}
	cusParams.AddMetadata("k8s_uid", "uid-customer")
	cusParams.SetIdempotencyKey("conformance-customer")
	cus, err := sc.Customers.New(cusParams)
	if err != nil {
		return nil, step("create customer", err)
	}
	cupd := &stripe.CustomerParams{Name: stripe.String("Acme Inc")}
	cupd.AddMetadata("team", "")
	if _, err := sc.Customers.Update(cus.ID, cupd); err != nil {
		return nil, step("update customer", err)
	}
	clp := &stripe.CustomerListParams{Email: stripe.String("c@example.com"),
		CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: 1}}
	clp.Limit = stripe.Int64(100)
	if it := sc.Customers.List(clp); !it.Next() && it.Err() != nil {
		return nil, step("list customers", it.Err())
	}
	cs := &stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{Query: "metadata['k8s_uid']:'uid-customer'"}}
	if it := sc.Customers.Search(cs); !it.Next() && it.Err() != nil {
		return nil, step("search customers", it.Err())
	}
	return cus, nil
}

// subscriptionScenario subscribes the customer, changes items, and cancels.
func subscriptionScenario(sc *client.API, prod *stripe.Product, successor *stripe.Price, cus *stripe.Customer) error {

	subParams := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items:            []*stripe.SubscriptionItemsParams{{Price: stripe.String(successor.ID), Quantity: stripe.Int64(2)}},
		TrialPeriodDays:  stripe.Int64(7),
		CollectionMethod: stripe.String("charge_automatically"), PaymentBehavior: stripe.String("allow_incomplete"),
		ProrationBehavior: stripe.String("create_prorations"), DefaultPaymentMethod: stripe.String("pm_card_visa")}
	subParams.AddMetadata("k8s_uid", "uid-subscription")
	subParams.AddExpand("latest_invoice")
	subParams.SetIdempotencyKey("conformance-subscription")
	sub, err := sc.Subscriptions.New(subParams)
	if err != nil {
		return step("create subscription", err)
	}
	if len(sub.Items.Data) == 0 {
		return errors.New("create subscription: no items")
	}
	item := sub.Items.Data[0].ID
	other, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(100), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		return step("create add-on price", err)
	}
	if _, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		Items: []*stripe.SubscriptionItemsParams{{ID: stripe.String(item), Quantity: stripe.Int64(3)},
			{Price: stripe.String(other.ID), Quantity: stripe.Int64(1)}},
		ProrationBehavior: stripe.String("none")}); err != nil {
		return step("update subscription items", err)
	}
	if _, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		CancelAtPeriodEnd: stripe.Bool(true)}); err != nil {
		return step("cancel at period end", err)
	}
	gp := &stripe.SubscriptionParams{}
	gp.AddExpand("latest_invoice")
	gp.AddExpand("customer")
	got, err := sc.Subscriptions.Get(sub.ID, gp)
	if err != nil {
		return step("get subscription", err)
	}
	if got.LatestInvoice != nil && got.LatestInvoice.ID != "" {
		if _, err := sc.Invoices.Get(got.LatestInvoice.ID, nil); err != nil {
			return step("get invoice", err)
		}
	}
	slp := &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID), Status: stripe.String("all")}
	if it := sc.Subscriptions.List(slp); !it.Next() && it.Err() != nil {
		return step("list subscriptions", it.Err())
	}
	_, err = sc.Subscriptions.Cancel(sub.ID, nil)
	return step("cancel subscription", err)
}

// refusedScenario holds requests Stripe refuses for their shape: both servers must refuse every one.
func refusedScenario(sc *client.API) map[string]error {
	out := map[string]error{}
	_, out["price update with unit_amount"] = sc.Prices.Update("price_123", &stripe.PriceParams{
		UnitAmount: stripe.Int64(5)})
	_, out["price update with currency"] = sc.Prices.Update("price_123", &stripe.PriceParams{
		Currency: stripe.String("eur")})
	_, out["price update with recurring"] = sc.Prices.Update("price_123", &stripe.PriceParams{
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("year")}})
	_, out["customer update with test_clock"] = sc.Customers.Update("cus_123", &stripe.CustomerParams{
		TestClock: stripe.String("clock_123")})
	_, out["customer update with payment_method"] = sc.Customers.Update("cus_123", &stripe.CustomerParams{
		PaymentMethod: stripe.String("pm_card_visa")})
	unknown := &stripe.CustomerParams{}
	unknown.AddExtra("favourite_colour", "blue")
	_, out["customer with an unknown parameter"] = sc.Customers.New(unknown)
	return out
}

var stripeMock *testenv.StripeMock

func TestMain(m *testing.M) {
	var err error
	if stripeMock, err = testenv.StartStripeMock(); err != nil {
		fmt.Fprintln(os.Stderr, "starting stripe-mock:", err)
		os.Exit(1)
	}
	code := m.Run()
	stripeMock.Stop()
	if code == 0 {
		code = validateSuiteResponses()
	}
	os.Exit(code)
}

func TestConformanceWithStripeMock(t *testing.T) {
	sim, srv := newSim(t, Options{Record: true})
	if err := scenario(stripeClient(srv.URL, "sk_test_123")); err != nil {
		t.Fatalf("the simulator refused the scenario: %v", err)
	}
	if err := scenario(stripeClient(stripeMock.URL, "sk_test_123")); err != nil {
		t.Fatalf("stripe-mock refused the scenario: %v", err)
	}
	// Every request the simulator executed, replayed byte for byte, is accepted by stripe-mock.
	recorded := sim.Recorded()
	if len(recorded) < 20 {
		t.Fatalf("only %d requests recorded", len(recorded))
	}
	for _, err := range Replay(t.Context(), stripeMock.URL, "sk_test_123", recorded) {
		t.Errorf("stripe-mock refused a request the simulator accepted: %v", err)
	}
}

func TestConformanceRefusals(t *testing.T) {
	_, srv := newSim(t, Options{})
	simErrs := refusedScenario(stripeClient(srv.URL, "sk_test_123"))
	mockErrs := refusedScenario(stripeClient(stripeMock.URL, "sk_test_123"))
	for name, err := range simErrs {
		var se *stripe.Error
		if !errors.As(err, &se) || se.HTTPStatusCode != 400 {
			t.Errorf("simulator: %s: want a 400, got %v", name, err)
		}
		if !errors.As(mockErrs[name], &se) || se.HTTPStatusCode != 400 {
			t.Errorf("stripe-mock: %s: want a 400, got %v", name, mockErrs[name])
		}
	}
}

// suite records every response of every simulator the package's tests start with newSim, for TestMain to
// validate once they have run.
var suite = struct {
	mu   sync.Mutex
	rec  *schemacheck.Recorder
	sims []*Sim
}{rec: schemacheck.NewRecorder(nil)}

// recordSuite wraps sim so that its responses are validated at the end of the test run.
func recordSuite(sim *Sim) http.Handler {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	suite.sims = append(suite.sims, sim)
	return suite.rec.Wrap(sim)
}

// validateSuiteResponses validates every response the simulators of the package's tests sent, and every event
// they recorded, against Stripe's 2023-10-16 specification: 1 if any violates it.
func validateSuiteResponses() int {
	o, err := schemacheck.Load()
	if err != nil {
		fmt.Println("loading the OpenAPI specification:", err)
		return 1
	}
	suite.mu.Lock()
	var events []map[string]any
	for _, sim := range suite.sims {
		events = append(events, sim.EventObjects()...)
	}
	suite.mu.Unlock()
	n, all := o.Validate(suite.rec.Exchanges(), events)
	keys, counts := schemacheck.Distinct(all)
	fmt.Printf("schema conformance over the whole suite: %d responses, %d violations (%d distinct)\n", n, len(all),
		len(keys))
	if len(all) == 0 {
		return 0
	}
	for _, k := range keys {
		fmt.Printf("  %s (x%d)\n", k, counts[k])
	}
	return 1
}
