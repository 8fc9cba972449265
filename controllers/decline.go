package controllers

import (
	"context"
	"fmt"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// declineMessages turns Stripe's decline codes (and payment error codes) into what a person should read.
var declineMessages = map[string]string{
	"insufficient_funds":                    "The card has insufficient funds.",
	"expired_card":                          "The card has expired.",
	"generic_decline":                       "The card was declined.",
	"card_declined":                         "The card was declined.",
	"do_not_honor":                          "The card was declined by its issuer.",
	"incorrect_cvc":                         "The card's security code is incorrect.",
	"incorrect_number":                      "The card number is incorrect.",
	"lost_card":                             "The card was reported lost.",
	"stolen_card":                           "The card was reported stolen.",
	"fraudulent":                            "The payment was declined as possibly fraudulent.",
	"processing_error":                      "The card could not be processed; it will be retried.",
	"card_velocity_exceeded":                "The card's limit was exceeded.",
	"authentication_required":               "The customer must authenticate the payment (3-D Secure).",
	"invoice_no_payment_method":             "The customer has no default payment method.",
	"payment_intent_authentication_failure": "The customer failed to authenticate the payment.",
}

// declineMessage explains a payment failure from the invoice's payment intent; "" when it cannot be read.
func declineMessage(ctx context.Context, c *stripe.Client, paymentIntentID string) string {
	if paymentIntentID == "" {
		return ""
	}
	p := &stripego.PaymentIntentParams{}
	pi, err := stripe.Call(ctx, c, stripe.Op{Resource: resPaymentIntent, Operation: stripe.OpRetrieve}, &p.Params,
		func() (*stripego.PaymentIntent, error) { return c.API.PaymentIntents.Get(paymentIntentID, p) })
	if err != nil {
		return ""
	}
	return paymentErrorMessage(pi.LastPaymentError)
}

// paymentErrorMessage explains a payment intent's last payment error; "" for none.
func paymentErrorMessage(e *stripego.Error) string {
	if e == nil {
		return ""
	}
	code := string(e.DeclineCode)
	if code == "" {
		code = string(e.Code)
	}
	if msg, ok := declineMessages[code]; ok {
		return fmt.Sprintf("%s (%s)", msg, code)
	}
	if e.Msg != "" {
		return fmt.Sprintf("%s (%s)", e.Msg, code)
	}
	return ""
}
