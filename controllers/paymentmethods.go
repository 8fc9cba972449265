package controllers

import (
	"context"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Payment methods. On Stripe a payment method must be attached to a customer before it becomes the customer's
// invoice default or a subscription's default, and each use of a test token (pm_card_visa) makes a new pm_ object.
// So a spec's defaultPaymentMethod is attached first, the default is set to the ID Stripe returns, and status
// records which spec value was attached as which ID (billingv1.AttachedPaymentMethod): the default Stripe holds is
// compared with that ID, never with the token.

const (
	resPaymentMethod = "payment_method"
	opAttach         = "attach"
)

// attachPaymentMethod attaches pm (a pm_ ID, or a test token, which Stripe turns into a new payment method) to the
// customer cus and returns the attached payment method's ID. The key is the object's, per value and generation, so a
// retry (after a timeout, a crash or a failed default update) replays Stripe's answer instead of attaching another
// card. A payment method attached to another customer is a 400, which the error table reports as Stalled.
func attachPaymentMethod(ctx context.Context, c *stripe.Client, obj client.Object, pm, cus string) (string, error) {
	p := &stripego.PaymentMethodAttachParams{Customer: stripego.String(cus)}
	key := stripe.IdempotencyKey(string(obj.GetUID()), "attach-"+pm, obj.GetGeneration())
	res, err := stripe.Call(ctx, c, stripe.Op{Resource: resPaymentMethod, Operation: opAttach, IdempotencyKey: key},
		&p.Params, func() (*stripego.PaymentMethod, error) { return c.API.PaymentMethods.Attach(pm, p) })
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// defaultPaymentMethod resolves spec (spec.defaultPaymentMethod) to the payment method ID that should be the
// default, given the record in status and have, the default Stripe holds: none when the spec names none; the
// recorded ID when the record is of this spec value; the spec's value itself when Stripe's default already is it
// (Stripe only accepts attached defaults). It updates the record, and reports ok false when the value must be
// attached first.
func defaultPaymentMethod(spec string, rec **billingv1.AttachedPaymentMethod, have string) (id string, ok bool) {
	switch r := *rec; {
	case spec == "":
		*rec = nil
		return "", true
	case r != nil && r.Spec == spec:
		return r.ID, true
	case have == spec:
		*rec = &billingv1.AttachedPaymentMethod{Spec: spec, ID: spec}
		return spec, true
	}
	return "", false
}
