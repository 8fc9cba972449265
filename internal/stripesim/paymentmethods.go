package stripesim

import (
	"strings"
)

// Payment methods. Stripe's test tokens (pm_card_visa, pm_card_chargeDeclined, ...) stand for cards: wherever a
// request attaches one to a customer (payment_method on customer create, POST /v1/payment_methods/{id}/attach), a
// new pm_ object is made from it, and within that same request the token names that object (so Stripe's documented
// customers.create(payment_method=pm_card_visa, invoice_settings[default_payment_method]=pm_card_visa) works). The
// pm_ object charges as its token does.

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
