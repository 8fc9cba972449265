package stripesim

import (
	"net/http"
	"strings"
)

// Payment methods. Stripe's test tokens (pm_card_visa, pm_card_chargeDeclined, ...) stand for cards: wherever a
// request attaches one to a customer (POST /v1/payment_methods/{id}/attach, or, with Options.StrictPaymentMethods,
// payment_method on customer create, after which the token names the new object for the rest of the request, so
// Stripe's documented customers.create(payment_method=pm_card_visa, invoice_settings[default_payment_method]=
// pm_card_visa) works), a new pm_ object is made from it. A pm_ object charges as its token does.

// paymentMethod is a card payment method made from a test token.
type paymentMethod struct {
	meta
	// Token is the test token it was made from, which decides how it charges.
	Token    string `json:"token"`
	Customer string `json:"customer"`
}

// card is what a test token's card looks like.
type card struct {
	Brand, Last4, Funding, Fingerprint string
	ExpMonth, ExpYear                  int64
}

// cardFor describes the card of a test token, as Stripe's testing documentation lists them.
func cardFor(token string) card {
	c := card{Brand: "visa", Last4: "4242", Funding: "credit", ExpMonth: 12, ExpYear: 2034}
	switch token {
	case "pm_card_visa_debit":
		c.Last4, c.Funding = "5556", "debit"
	case "pm_card_mastercard":
		c.Brand, c.Last4 = "mastercard", "4444"
	case "pm_card_amex":
		c.Brand, c.Last4 = "amex", "8431"
	case "pm_card_chargeDeclined":
		c.Last4 = "0002"
	case "pm_card_chargeDeclinedInsufficientFunds":
		c.Last4 = "9995"
	case "pm_card_chargeDeclinedExpiredCard":
		c.Last4 = "0069"
	case "pm_card_authenticationRequired":
		c.Last4 = "3155"
	}
	c.Fingerprint = "simfp" + c.Brand + c.Last4
	return c
}

// isTestToken reports whether id is one of Stripe's test payment method tokens.
func isTestToken(id string) bool { return strings.HasPrefix(id, "pm_card_") }

// tokenOf is the test token a payment method charges as: its token for a pm_ object, else the ID itself.
func (s *store) tokenOf(pm string) string {
	if p := s.paymentMethods[pm]; p != nil {
		return p.Token
	}
	return pm
}

func (s *store) renderPaymentMethod(p *paymentMethod) obj {
	c := cardFor(p.Token)
	return obj{"id": p.ID, "object": "payment_method",
		"billing_details": obj{"address": obj{"city": nil, "country": nil, "line1": nil, "line2": nil,
			"postal_code": nil, "state": nil}, "email": nil, "name": nil, "phone": nil},
		"card": obj{"brand": c.Brand,
			"checks":  obj{"address_line1_check": nil, "address_postal_code_check": nil, "cvc_check": "pass"},
			"country": "US", "display_brand": c.Brand, "exp_month": c.ExpMonth, "exp_year": c.ExpYear,
			"fingerprint": c.Fingerprint, "funding": c.Funding, "generated_from": nil, "last4": c.Last4,
			"networks":             obj{"available": []string{c.Brand}, "preferred": nil},
			"three_d_secure_usage": obj{"supported": true}, "wallet": nil},
		"created": p.Created, "customer": nilIfEmpty(p.Customer), "livemode": s.live,
		"metadata": metadataJSON(p.Metadata), "type": "card"}
}

// Stripe's rule that a payment method is attached to the customer before it becomes the customer's or a
// subscription's default is enforced with Options.StrictPaymentMethods; without it a default may be any pm_ ID or
// test token, which is kept as sent (the simulator's behaviour before payment methods were modelled, which the
// operator's tests rely on until it attaches).

func notAttached(param, id string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeResourceMissing,
		Param: param, Message: "The customer does not have a payment method with the ID " + id +
			". The payment method must be attached to the customer."}
}

func alreadyAttached(param string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: param,
		Message: "The payment method you provided has already been attached to a customer."}
}

// fromToken makes a payment method from a test token; the caller stores it once the request succeeds.
func (c *call) fromToken(token string) *paymentMethod {
	return &paymentMethod{meta: c.nextMeta("pm"), Token: token}
}

// attachOnCreate resolves customer create's payment_method: a test token becomes a new payment method, which
// the token names for the rest of the request; an existing one must be unattached. It returns the payment method
// to attach once the customer exists (nil when there is none to attach).
func (c *call) attachOnCreate(id string) *paymentMethod {
	f := &c.f
	switch {
	case !strings.HasPrefix(id, "pm_"):
		if f.err == nil {
			f.err = noSuch("PaymentMethod", "payment_method", id)
		}
		return nil
	case isTestToken(id):
		pm := c.fromToken(id)
		c.tokens[id] = pm
		return pm
	}
	pm := c.st.paymentMethods[id]
	switch {
	case pm == nil && c.sim.opts.StrictPaymentMethods:
		if f.err == nil {
			f.err = noSuch("PaymentMethod", "payment_method", id)
		}
	case pm != nil && pm.Customer != "":
		if f.err == nil {
			f.err = alreadyAttached("payment_method")
		}
		return nil
	}
	return pm
}

// defaultPaymentMethod resolves a payment method that is to become a default of customer cus: a token attached in
// this request names that payment method; otherwise, with StrictPaymentMethods, it must be a payment
// method attached to cus. It returns the ID to keep.
func (c *call) defaultPaymentMethod(param, id, cus string) string {
	f := &c.f
	if !strings.HasPrefix(id, "pm_") {
		if f.err == nil {
			f.err = noSuch("PaymentMethod", param, id)
		}
		return id
	}
	if pm := c.tokens[id]; pm != nil {
		return pm.ID
	}
	if !c.sim.opts.StrictPaymentMethods {
		return id
	}
	pm := c.st.paymentMethods[id]
	switch {
	case f.err != nil:
	case pm == nil && !isTestToken(id):
		f.err = noSuch("PaymentMethod", param, id)
	case pm == nil || pm.Customer != cus:
		// A token not attached in this request would be a new payment method, attached to no one.
		f.err = notAttached(param, id)
	}
	return id
}

func (c *call) paymentMethod() (*paymentMethod, *apiError) {
	if isTestToken(c.id) {
		// A test token names a new payment method wherever an ID is accepted.
		pm := c.fromToken(c.id)
		c.st.paymentMethods[pm.ID] = pm
		return pm, nil
	}
	pm := c.st.paymentMethods[c.id]
	if pm == nil {
		return nil, noSuch("PaymentMethod", "payment_method", c.id)
	}
	return pm, nil
}

func (c *call) getPaymentMethod() (any, *apiError) {
	if c.f.unknown(c.form); c.f.err != nil {
		return nil, c.f.err
	}
	pm, err := c.paymentMethod()
	if err != nil {
		return nil, err
	}
	return c.st.renderPaymentMethod(pm), nil
}

// attachPaymentMethod is POST /v1/payment_methods/{id}/attach.
func (c *call) attachPaymentMethod() (any, *apiError) {
	f := &c.f
	f.unknown(c.form, "customer")
	cusID, ok := f.str(c.form, "customer")
	if f.err != nil {
		return nil, f.err
	}
	if !ok {
		return nil, missingParam("customer")
	}
	cu := c.st.customers[cusID]
	if cu == nil || cu.Deleted {
		return nil, noSuch("customer", "customer", cusID)
	}
	pm, err := c.paymentMethod()
	if err != nil {
		return nil, err
	}
	switch pm.Customer {
	case cusID:
		return c.st.renderPaymentMethod(pm), nil
	case "":
	default:
		return nil, alreadyAttached("payment_method")
	}
	c.now = c.st.clockTime(cusID, c.now)
	pm.Customer = cusID
	out := c.st.renderPaymentMethod(pm)
	c.emit("payment_method.attached", out, nil)
	return out, nil
}

// detachPaymentMethod is POST /v1/payment_methods/{id}/detach: the payment method stops being its customer's and
// that customer's subscriptions' default.
func (c *call) detachPaymentMethod() (any, *apiError) {
	if c.f.unknown(c.form); c.f.err != nil {
		return nil, c.f.err
	}
	pm, err := c.paymentMethod()
	if err != nil {
		return nil, err
	}
	if pm.Customer == "" {
		return nil, invalidRequest("The payment method you provided is not attached to a customer so detachment " +
			"is impossible.")
	}
	c.now = c.st.clockTime(pm.Customer, c.now)
	if cu := c.st.customers[pm.Customer]; cu != nil && cu.DefaultPaymentMethod != nil &&
		*cu.DefaultPaymentMethod == pm.ID {
		before := c.st.renderCustomer(cu)
		cu.DefaultPaymentMethod = nil
		c.emitUpdate("customer.updated", before, c.st.renderCustomer(cu))
	}
	for _, sub := range c.st.subscriptions {
		if sub.Customer == pm.Customer && sub.DefaultPaymentMethod != nil && *sub.DefaultPaymentMethod == pm.ID {
			before := c.st.renderSubscription(sub, nil)
			sub.DefaultPaymentMethod = nil
			c.emitUpdate("customer.subscription.updated", before, c.st.renderSubscription(sub, nil))
		}
	}
	before := c.st.renderPaymentMethod(pm)
	pm.Customer = ""
	out := c.st.renderPaymentMethod(pm)
	c.emit("payment_method.detached", out, before)
	return out, nil
}

// listPaymentMethods is GET /v1/payment_methods (customer and type filters).
func (c *call) listPaymentMethods() (any, *apiError) {
	c.listParams("customer", "type")
	cus, hasCus := c.f.str(c.form, "customer")
	return c.paymentMethodList("/v1/payment_methods", cus, hasCus)
}

// listCustomerPaymentMethods is GET /v1/customers/{id}/payment_methods.
func (c *call) listCustomerPaymentMethods() (any, *apiError) {
	c.listParams("type")
	if cu := c.st.customers[c.id]; cu == nil || cu.Deleted {
		return nil, noSuch("customer", "customer", c.id)
	}
	return c.paymentMethodList("/v1/customers/"+c.id+"/payment_methods", c.id, true)
}

func (c *call) paymentMethodList(url, cus string, hasCus bool) (any, *apiError) {
	typ, hasType := c.f.str(c.form, "type")
	if c.f.err != nil {
		return nil, c.f.err
	}
	var objs []*paymentMethod
	for _, pm := range c.st.paymentMethods {
		if (hasCus && pm.Customer != cus) || (hasType && typ != "card") {
			continue
		}
		objs = append(objs, pm)
	}
	return list(c, url, objs, c.st.renderPaymentMethod), nil
}
