package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Disputes (chargebacks). Stripe's dispute events name the disputed charge and payment intent, not the customer, so
// the worker reads the payment intent (or, for a charge made without one, the charge) to find the customer, then
// the Customer by its Stripe ID. The Customer keeps its open disputes and the last few closed ones in
// status.disputes, and a Disputed condition summarises them.

// The dispute event types the worker handles.
const (
	eventDisputeCreated = "charge.dispute.created"
	eventDisputeClosed  = "charge.dispute.closed"
)

// Stripe resources the dispute path reads.
const (
	resPaymentIntent = "payment_intent"
	resCharge        = "charge"
	resDispute       = "dispute"
)

// closedDisputesKept is how many closed disputes a Customer's status keeps beside the open ones.
const closedDisputesKept = 5

// maxDisputes is the bound of status.disputes (its MaxItems).
const maxDisputes = 20

func isDisputeEvent(typ string) bool { return typ == eventDisputeCreated || typ == eventDisputeClosed }

// disputeClosed says whether a dispute status is final.
func disputeClosed(status string) bool {
	return status == string(stripego.DisputeStatusWon) || status == string(stripego.DisputeStatusLost) ||
		status == string(stripego.DisputeStatusWarningClosed)
}

// readDispute returns the event's dispute: from the payload when it is in the API version the operator speaks,
// else re-read from Stripe (a payload of another version, or one too large to store).
func readDispute(ctx context.Context, c *stripe.Client, ev *billingv1.StripeEvent, p payload) (*stripego.Dispute,
	error) {
	if len(p.Data.Object) > 0 && (ev.Spec.APIVersion == "" || ev.Spec.APIVersion == stripego.APIVersion) {
		var d stripego.Dispute
		if err := json.Unmarshal(p.Data.Object, &d); err == nil && d.ID != "" {
			return &d, nil
		}
	}
	if ev.Spec.ObjectID == "" {
		return nil, fmt.Errorf("event %s names no dispute", ev.Spec.EventID)
	}
	params := &stripego.DisputeParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resDispute, Operation: stripe.OpRetrieve}, &params.Params,
		func() (*stripego.Dispute, error) { return c.API.Disputes.Get(ev.Spec.ObjectID, params) })
}

// disputedCustomer finds the Stripe customer whose payment is disputed, with one read: the payment intent, or the
// charge when the payment was made without one. "" means the payment has no customer.
func disputedCustomer(ctx context.Context, c *stripe.Client, d *stripego.Dispute) (string, error) {
	if d.PaymentIntent != nil && d.PaymentIntent.ID != "" {
		if d.PaymentIntent.Customer != nil && d.PaymentIntent.Customer.ID != "" {
			return d.PaymentIntent.Customer.ID, nil // expanded
		}
		p := &stripego.PaymentIntentParams{}
		pi, err := stripe.Call(ctx, c, stripe.Op{Resource: resPaymentIntent, Operation: stripe.OpRetrieve},
			&p.Params, func() (*stripego.PaymentIntent, error) { return c.API.PaymentIntents.Get(d.PaymentIntent.ID, p) })
		if err != nil {
			return "", err
		}
		if pi.Customer != nil {
			return pi.Customer.ID, nil
		}
		return "", nil
	}
	if d.Charge != nil && d.Charge.ID != "" {
		if d.Charge.Customer != nil && d.Charge.Customer.ID != "" {
			return d.Charge.Customer.ID, nil // expanded
		}
		p := &stripego.ChargeParams{}
		ch, err := stripe.Call(ctx, c, stripe.Op{Resource: resCharge, Operation: stripe.OpRetrieve}, &p.Params,
			func() (*stripego.Charge, error) { return c.API.Charges.Get(d.Charge.ID, p) })
		if err != nil {
			return "", err
		}
		if ch.Customer != nil {
			return ch.Customer.ID, nil
		}
	}
	return "", nil
}

// summaryOf is what status keeps of a dispute.
func summaryOf(d *stripego.Dispute) billingv1.DisputeSummary {
	s := billingv1.DisputeSummary{ID: d.ID, Status: string(d.Status), Amount: d.Amount,
		Currency: string(d.Currency), Reason: string(d.Reason), Created: d.Created}
	if d.PaymentIntent != nil {
		s.PaymentIntent = d.PaymentIntent.ID
	}
	return s
}

// describeDispute names a dispute, its amount and reason, for conditions and Events.
func describeDispute(d billingv1.DisputeSummary) string {
	return fmt.Sprintf("%s (%d %s, %s)", d.ID, d.Amount, d.Currency, d.Reason)
}

// disputeChange is what folding a dispute event did.
type disputeChange int

const (
	// disputeUnchanged: a redelivery, or an event older than what status holds (an open dispute's event after
	// its close).
	disputeUnchanged disputeChange = iota
	// disputeOpened: a dispute became known as open.
	disputeOpened
	// disputeClosedNow: a dispute became known as closed.
	disputeClosedNow
)

// foldDispute records a dispute event in the Customer's status and sets the Disputed condition. A closed dispute is
// never reopened by an older event; closed disputes beyond the last few are forgotten.
func foldDispute(cus *billingv1.Customer, d billingv1.DisputeSummary, eventID string) disputeChange {
	list := cus.Status.Disputes
	i := slices.IndexFunc(list, func(s billingv1.DisputeSummary) bool { return s.ID == d.ID })
	closed := disputeClosed(d.Status)
	if i >= 0 && (disputeClosed(list[i].Status) || !closed) {
		return disputeUnchanged // already closed, or already known as open
	}
	change := disputeOpened
	if closed {
		change = disputeClosedNow
	}
	if i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	// Open disputes first, then closed ones, most recent last within each group.
	list = append(list, d)
	var open, done []billingv1.DisputeSummary
	for _, s := range list {
		if disputeClosed(s.Status) {
			done = append(done, s)
		} else {
			open = append(open, s)
		}
	}
	if len(done) > closedDisputesKept {
		done = done[len(done)-closedDisputesKept:]
	}
	if len(open) > maxDisputes {
		open = open[len(open)-maxDisputes:]
	}
	if n := maxDisputes - len(open); len(done) > n {
		done = done[len(done)-n:]
	}
	cus.Status.Disputes = append(open, done...)
	setDisputedCondition(cus, d, eventID)
	return change
}

// setDisputedCondition is True while any dispute is open, naming them; when the last one closes it is False with
// the outcome of the dispute that closed (last) as its reason.
func setDisputedCondition(cus *billingv1.Customer, last billingv1.DisputeSummary, eventID string) {
	var open []string
	for _, s := range cus.Status.Disputes {
		if !disputeClosed(s.Status) {
			open = append(open, describeDispute(s))
		}
	}
	c := metav1.Condition{Type: billingv1.ConditionDisputed, ObservedGeneration: cus.Generation}
	switch {
	case len(open) == 1:
		c.Status, c.Reason = metav1.ConditionTrue, billingv1.ReasonDisputeOpened
		c.Message = "Dispute " + open[0] + " is open; respond with evidence in the Stripe Dashboard"
	case len(open) > 1:
		c.Status, c.Reason = metav1.ConditionTrue, billingv1.ReasonDisputeOpened
		c.Message = fmt.Sprintf("%d disputes are open: %s; respond with evidence in the Stripe Dashboard",
			len(open), strings.Join(open, ", "))
	default:
		c.Status, c.Reason = metav1.ConditionFalse, disputeOutcomeReason(last.Status)
		c.Message = "Dispute " + describeDispute(last) + " closed: " + last.Status
	}
	c.Message += " [" + eventID + "]"
	meta.SetStatusCondition(&cus.Status.Conditions, c)
}

func disputeOutcomeReason(status string) string {
	switch status {
	case string(stripego.DisputeStatusWon):
		return billingv1.ReasonDisputeWon
	case string(stripego.DisputeStatusLost):
		return billingv1.ReasonDisputeLost
	}
	return billingv1.ReasonDisputeClosed
}

// applyDispute folds a dispute event into the Customer's status and, on a change, emits an Event: Warning
// DisputeOpened, Warning DisputeLost, Normal DisputeWon or DisputeClosed. Dispute events do not move
// status.lastEventID: they are about the dispute, not the customer object, and are ordered by the dispute's state.
func (w *eventWorker) applyDispute(ctx context.Context, ev *billingv1.StripeEvent, d *stripego.Dispute,
	target billingv1.StripeObject) (string, error) {
	cus, ok := target.(*billingv1.Customer)
	if !ok {
		return "", fmt.Errorf("dispute %s routed to a %s", d.ID, kindName(target))
	}
	base := cus.DeepCopy()
	s := summaryOf(d)
	change := foldDispute(cus, s, ev.Spec.EventID)
	if change == disputeUnchanged {
		return "already recorded", nil
	}
	if err := w.owner().apply(ctx, w.client, base, cus); err != nil {
		return "", err
	}
	typ, reason, msg := corev1.EventTypeWarning, billingv1.ReasonDisputeOpened,
		fmt.Sprintf("Customer %s disputes a payment: %s; respond with evidence in the Stripe Dashboard",
			cus.Status.ID, describeDispute(s))
	if change == disputeClosedNow {
		reason = disputeOutcomeReason(s.Status)
		if reason != billingv1.ReasonDisputeLost {
			typ = corev1.EventTypeNormal
		}
		msg = fmt.Sprintf("Dispute %s of customer %s closed: %s", describeDispute(s), cus.Status.ID, s.Status)
	}
	w.recorder.Eventf(cus, nil, typ, reason, "Dispute", "%s", msg)
	return "dispute " + d.ID + " " + s.Status, nil
}
