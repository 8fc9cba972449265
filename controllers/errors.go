package controllers

import (
	"time"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// errorTableRow is how the loop treats one class of Stripe error.
type errorTableRow struct {
	class stripe.Class
	// reason is the condition reason written.
	reason string
	// stalled: a person must act (the spec, the credentials or the payment method must change); no retry.
	stalled bool
	// requeueAfter is a fixed retry; 0 with stalled false means the controller's exponential backoff.
	requeueAfter time.Duration
}

// errorTable is the one table from Stripe error class to condition reason and retry.
var errorTable = []errorTableRow{
	{class: stripe.ClassRateLimited, reason: billingv1.ReasonRateLimited, requeueAfter: time.Second},
	{class: stripe.ClassUnavailable, reason: billingv1.ReasonStripeUnavailable},
	{class: stripe.ClassInProgress, reason: billingv1.ReasonRequestInProgress, requeueAfter: 2 * time.Second},
	{class: stripe.ClassIdempotencyMismatch, reason: billingv1.ReasonRequestInProgress, requeueAfter: 2 * time.Second},
	{class: stripe.ClassInvalidRequest, reason: billingv1.ReasonInvalidRequest, stalled: true},
	{class: stripe.ClassNotFound, reason: billingv1.ReasonReferenceNotFound, stalled: true},
	{class: stripe.ClassAuthentication, reason: billingv1.ReasonAuthenticationFailed, stalled: true},
	{class: stripe.ClassPermission, reason: billingv1.ReasonPermissionDenied, stalled: true},
	{class: stripe.ClassCard, reason: billingv1.ReasonPaymentFailed, stalled: true},
}

// errorRow returns the table's row for a class; an unknown class is treated as Stripe being unavailable (retried).
func errorRow(c stripe.Class) errorTableRow {
	for _, row := range errorTable {
		if row.class == c {
			return row
		}
	}
	return errorTableRow{class: c, reason: billingv1.ReasonStripeUnavailable}
}

// stallError is a state a kind's External finds that a person must resolve, with no Stripe error behind it (a
// change made in Stripe that keeps coming back): the object is Stalled with the reason, and not retried until it
// changes or an event asks for a read.
type stallError struct {
	reason, msg string
}

func (e *stallError) Error() string { return e.msg }
