package stripesim

import (
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// pmIDs drains a payment method list.
func pmIDs(t *testing.T, it interface {
	Next() bool
	Err() error
	PaymentMethod() *stripe.PaymentMethod
}) []string {
	t.Helper()
	var out []string
	for it.Next() {
		out = append(out, it.PaymentMethod().ID)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	return out
}

func customerPMs(t *testing.T, sc *client.API, cus string) []string {
	t.Helper()
	a := pmIDs(t, sc.PaymentMethods.List(&stripe.PaymentMethodListParams{Customer: stripe.String(cus),
		Type: stripe.String("card")}))
	b := pmIDs(t, sc.Customers.ListPaymentMethods(&stripe.CustomerListPaymentMethodsParams{
		Customer: stripe.String(cus), Type: stripe.String("card")}))
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("GET /v1/payment_methods?customer= lists %v, GET /v1/customers/{id}/payment_methods %v", a, b)
	}
	return a
}

// TestPaymentMethods (StrictPaymentMethods): test tokens become pm_ objects when attached; retrieve, list by customer (both endpoints),
// attach and detach; detaching clears the defaults that name the payment method; a payment method charges as the
// token it was made from.
func TestPaymentMethods(t *testing.T) {
	_, sc := newClient(t, Options{StrictPaymentMethods: true})
	cus, err := sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}})
	if err != nil {
		t.Fatal(err)
	}
	visa := cus.InvoiceSettings.DefaultPaymentMethod.ID
	if !strings.HasPrefix(visa, "pm_") || isTestToken(visa) {
		t.Fatalf("the token did not become a payment method: %s", visa)
	}
	pm, err := sc.PaymentMethods.Get(visa, nil)
	if err != nil || pm.Customer.ID != cus.ID || pm.Card.Last4 != "4242" || pm.Card.Brand != "visa" ||
		pm.Type != "card" {
		t.Fatalf("retrieve: %v %+v", err, pm)
	}
	if got := customerPMs(t, sc, cus.ID); len(got) != 1 || got[0] != visa {
		t.Fatalf("list: %v", got)
	}
	mc, err := sc.PaymentMethods.Attach("pm_card_mastercard",
		&stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)})
	if err != nil || mc.Customer.ID != cus.ID || mc.Card.Brand != "mastercard" || mc.ID == "pm_card_mastercard" {
		t.Fatalf("attach a token: %v %+v", err, mc)
	}
	if got := customerPMs(t, sc, cus.ID); len(got) != 2 || got[0] != mc.ID {
		t.Fatalf("list after attach, newest first: %v", got)
	}
	other := must(sc.Customers.New(&stripe.CustomerParams{}))
	_, err = sc.PaymentMethods.Attach(mc.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String(other.ID)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	_, err = sc.PaymentMethods.Attach(mc.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String("cus_nope")})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	_, err = sc.PaymentMethods.Get("pm_nope", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)

	// Detaching the default clears it.
	if _, err := sc.PaymentMethods.Detach(visa, nil); err != nil {
		t.Fatal(err)
	}
	if got := must(sc.Customers.Get(cus.ID, nil)); got.InvoiceSettings.DefaultPaymentMethod != nil {
		t.Errorf("the detached payment method is still the default: %v", got.InvoiceSettings.DefaultPaymentMethod)
	}
	if got := customerPMs(t, sc, cus.ID); len(got) != 1 || got[0] != mc.ID {
		t.Fatalf("list after detach: %v", got)
	}
	_, err = sc.PaymentMethods.Detach(visa, nil)
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")

	// A payment method made from pm_card_chargeDeclined is declined.
	_, pr := fixture(t, sc, 1000)
	declining, err := sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_chargeDeclined"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
			DefaultPaymentMethod: stripe.String("pm_card_chargeDeclined")}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(declining.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}})
	if err != nil || sub.Status != "incomplete" {
		t.Fatalf("a declining payment method: %v %v", err, sub)
	}
}

// TestAttachBeforeDefault: with StrictPaymentMethods, as on Stripe, a payment method becomes a customer's
// or a subscription's default only once attached to that customer; a test token counts as attached only in the
// request that attaches it. Without the option, defaults are kept as sent.
func TestAttachBeforeDefault(t *testing.T) {
	_, sc := newClient(t, Options{StrictPaymentMethods: true})
	_, pr := fixture(t, sc, 1000)
	cus := must(sc.Customers.New(&stripe.CustomerParams{}))
	setDefault := func(pm string) error {
		_, err := sc.Customers.Update(cus.ID, &stripe.CustomerParams{
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm)}})
		return err
	}
	info := stripeErr(t, setDefault("pm_card_visa"), 400, stripe.ErrorTypeInvalidRequest,
		stripe.ErrorCodeResourceMissing)
	if info.Param != "invoice_settings[default_payment_method]" || info.Msg != "The customer does not have a "+
		"payment method with the ID pm_card_visa. The payment method must be attached to the customer." {
		t.Errorf("unattached token as default: %+v", info)
	}
	_, err := sc.Customers.New(&stripe.CustomerParams{
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	stripeErr(t, setDefault("pm_unknown"), 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	loose := must(sc.PaymentMethods.Get("pm_card_visa", nil)) // a payment method attached to no one
	stripeErr(t, setDefault(loose.ID), 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)

	pm := must(sc.PaymentMethods.Attach("pm_card_visa", &stripe.PaymentMethodAttachParams{
		Customer: stripe.String(cus.ID)}))
	if err := setDefault(pm.ID); err != nil {
		t.Fatalf("an attached payment method as default: %v", err)
	}
	// A subscription's default_payment_method follows the same rule.
	_, err = sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items:                []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}},
		DefaultPaymentMethod: stripe.String("pm_card_visa")})
	if info := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing); info.Param !=
		"default_payment_method" {
		t.Errorf("subscription with an unattached token: %+v", info)
	}
	sub, err := sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items:                []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}},
		DefaultPaymentMethod: stripe.String(pm.ID)})
	if err != nil || sub.Status != "active" || sub.DefaultPaymentMethod.ID != pm.ID {
		t.Fatalf("subscription with an attached payment method: %v %+v", err, sub)
	}
	// Stripe's documented one-request form: attach the token and make it the default.
	both, err := sc.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}})
	if err != nil || both.InvoiceSettings.DefaultPaymentMethod == nil {
		t.Fatalf("payment_method and default in one request: %v", err)
	}

	// Without the option, payment_method on creation attaches nothing and a token is kept as sent (the operator's
	// tests rely on it until the operator attaches).
	_, lenient := newClient(t, Options{})
	c2, err := lenient.Customers.New(&stripe.CustomerParams{PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}})
	if err != nil || c2.InvoiceSettings.DefaultPaymentMethod.ID != "pm_card_visa" {
		t.Fatalf("lenient: %v %+v", err, c2)
	}
	if got := customerPMs(t, lenient, c2.ID); len(got) != 0 {
		t.Errorf("lenient: payment_method on creation attached %v", got)
	}
	if _, err := lenient.Customers.Update(c2.ID, &stripe.CustomerParams{InvoiceSettings: &stripe.
		CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_mastercard")}}); err != nil {
		t.Errorf("lenient: an unattached token as default: %v", err)
	}
	gp := &stripe.CustomerParams{}
	gp.AddExpand("invoice_settings.default_payment_method")
	if got, err := lenient.Customers.Get(c2.ID, gp); err != nil || got.InvoiceSettings.DefaultPaymentMethod.Card == nil ||
		got.InvoiceSettings.DefaultPaymentMethod.Card.Last4 != "4444" {
		t.Fatalf("expanding a default kept as a token: %v", err)
	}
}
