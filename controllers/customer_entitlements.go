package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A Customer's entitlements. Stripe grants a customer the features of the products of its active subscriptions
// and announces every change of that set with an entitlements.active_entitlement_summary.updated event, whose
// object names the customer and lists its active entitlements. The event worker folds that summary into the
// Customer's status.entitlements (lookup keys, sorted) and status.entitlementsConfirmedAt (the event's time): the
// payload is the truth, so no read is made, except when the order of two summaries cannot be told (they carry
// the same second and differ) or a summary's list is cut short (has_more): then one read of the customer's active
// entitlements settles it.
//
// Where the summary events are not delivered (--entitlement-summary-events=false: an endpoint configured without
// them), the worker reads the customer's active entitlements once per subscription change instead (a subscription's
// first invoice paid, a subscription paused, resumed or deleted, or updated in its status or items), and never for
// another event; and only where entitlements are used: the Customer's namespace declares a feature (an
// EntitlementFeature, or a Product with spec.features) or the Customer lists entitlements already. A namespace that
// declares none costs no read (features attached to its products outside the cluster show only with summary events).

const (
	// eventEntitlementSummary is Stripe's event of a change of a customer's active entitlements.
	eventEntitlementSummary = "entitlements.active_entitlement_summary.updated"
	// stripeObjectEntitlementSummary is the object type of that event's data.object.
	stripeObjectEntitlementSummary = "entitlements.active_entitlement_summary"
	// eventInvoicePaid is Stripe's event of a paid invoice: a subscription's first one starts its grant.
	eventInvoicePaid = "invoice.paid"
	// resActiveEntitlement labels the reads of active entitlements in the request metrics.
	resActiveEntitlement = "entitlements.active_entitlement"
)

// entitlementSummary is what the worker reads of an active entitlement summary.
type entitlementSummary struct {
	Customer     string `json:"customer"`
	Entitlements struct {
		Data []struct {
			LookupKey string `json:"lookup_key"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	} `json:"entitlements"`
}

// lookupKeys are the summary's lookup keys, sorted.
func (s *entitlementSummary) lookupKeys() []string {
	keys := make([]string, 0, len(s.Entitlements.Data))
	for _, e := range s.Entitlements.Data {
		keys = append(keys, e.LookupKey)
	}
	return sortedIDs(keys)
}

// foldEntitlementSummary folds a summary event into its Customer. Summaries are ordered by their creation time
// against status.entitlementsConfirmedAt: an older one is skipped, a newer one is the truth, and one of the same
// second that disagrees with status is settled by a read (which also covers a redelivered older summary of that
// second).
func (w *eventWorker) foldEntitlementSummary(ctx context.Context, ev *billingv1.StripeEvent, p payload,
	target billingv1.StripeObject) (string, error) {
	cus, ok := target.(*billingv1.Customer)
	if !ok {
		return "not a customer's event", nil
	}
	var s entitlementSummary
	if err := json.Unmarshal(p.Data.Object, &s); err != nil {
		return "", fmt.Errorf("decoding the entitlement summary: %w", err)
	}
	keys := s.lookupKeys()
	var confirmed int64
	if at := cus.Status.EntitlementsConfirmedAt; at != nil {
		confirmed = at.Unix()
	}
	switch {
	case at(ev) < confirmed:
		return "older than the entitlements status holds", nil
	case at(ev) == confirmed && slices.Equal(keys, cus.Status.Entitlements):
		return "the entitlements status holds (no change)", nil
	case at(ev) == confirmed || s.Entitlements.HasMore:
		return w.readEntitlements(ctx, cus, at(ev), "summary of the same second as status, or cut short")
	}
	return w.writeEntitlements(ctx, cus, keys, at(ev), "entitlements folded from the summary")
}

// at is an event's creation time in Unix seconds.
func at(ev *billingv1.StripeEvent) int64 { return ev.Spec.Created }

// writeEntitlements writes the Customer's entitlements under the worker's field manager (see ownership.go).
func (w *eventWorker) writeEntitlements(ctx context.Context, cus *billingv1.Customer, keys []string, confirmedAt int64,
	msg string) (string, error) {
	base := cus.DeepCopy()
	cus.Status.Entitlements = keys
	t := metav1.NewTime(time.Unix(confirmedAt, 0))
	cus.Status.EntitlementsConfirmedAt = &t
	if err := w.owner().apply(ctx, w.client, base, cus); err != nil {
		return "", err
	}
	return msg + ": [" + strings.Join(keys, ", ") + "]", nil
}

// readEntitlements reads the customer's active entitlements from Stripe and writes them, confirmed at the later of
// the event's time and now (the read is at least as new as both).
func (w *eventWorker) readEntitlements(ctx context.Context, cus *billingv1.Customer, eventAt int64,
	why string) (string, error) {
	res, err := w.creds.For(ctx, cus.Namespace)
	if err != nil {
		return "", err
	}
	keys, err := listActiveEntitlements(ctx, res.Client, cus.Status.ID)
	if err != nil {
		return "", err
	}
	return w.writeEntitlements(ctx, cus, keys, max(eventAt, w.now().Unix()), "read from Stripe ("+why+")")
}

// listActiveEntitlements reads the lookup keys of every active entitlement of the customer, sorted.
func listActiveEntitlements(ctx context.Context, c *stripe.Client, customer string) ([]string, error) {
	p := &stripego.EntitlementsActiveEntitlementListParams{Customer: stripego.String(customer)}
	p.Limit = stripego.Int64(100)
	p.Single = true
	var keys []string
	for {
		l, err := stripe.Call(ctx, c, stripe.Op{Resource: resActiveEntitlement, Operation: stripe.OpList},
			&p.ListParams, func() (*stripego.EntitlementsActiveEntitlementList, error) {
				it := c.API.EntitlementsActiveEntitlements.List(p)
				if err := it.Err(); err != nil {
					return nil, err
				}
				return it.EntitlementsActiveEntitlementList(), nil
			})
		if err != nil {
			return nil, err
		}
		for _, e := range l.Data {
			keys = append(keys, e.LookupKey)
		}
		if !l.HasMore || len(l.Data) == 0 {
			return sortedIDs(keys), nil
		}
		p.StartingAfter = stripego.String(l.Data[len(l.Data)-1].ID)
	}
}

// entitlementChange reports whether an event says a subscription's grant of its products' features may have changed:
// its first invoice was paid (invoice.paid with billing_reason subscription_create: it started, active or
// trialing), it paused, resumed or ended, or its status or items changed. A subscription's creation alone grants
// nothing until then (its first payment may fail), so customer.subscription.created is not one; neither is a
// renewal's invoice, nor any other change.
func entitlementChange(typ string, p payload) bool {
	switch typ {
	case eventInvoicePaid:
		var in struct {
			BillingReason string `json:"billing_reason"`
		}
		return json.Unmarshal(p.Data.Object, &in) == nil && in.BillingReason == "subscription_create"
	case "customer.subscription.deleted", "customer.subscription.paused", "customer.subscription.resumed":
		return true
	case "customer.subscription.updated":
		_, status := p.Data.PreviousAttributes["status"]
		_, items := p.Data.PreviousAttributes["items"]
		return status || items
	}
	return false
}

// refreshEntitlements is the fallback without summary events: once an event that can change a customer's
// entitlements (entitlementChange) is settled (folded, or its Subscription gone from the cluster), one read of the
// customer's active entitlements, written to its Customer. Other events cost nothing.
func (w *eventWorker) refreshEntitlements(ctx context.Context, ev *billingv1.StripeEvent) error {
	if !w.entitlementReads ||
		ev.Spec.Type != eventInvoicePaid && !strings.HasPrefix(ev.Spec.Type, "customer.subscription.") {
		return nil
	}
	var p payload
	var s struct {
		Customer json.RawMessage `json:"customer"`
	}
	var id string
	if json.Unmarshal([]byte(ev.Spec.Payload), &p) != nil || !entitlementChange(ev.Spec.Type, p) ||
		json.Unmarshal(p.Data.Object, &s) != nil || json.Unmarshal(s.Customer, &id) != nil || id == "" {
		return nil
	}
	key, ok := w.ids.get(kindCustomer, id)
	if !ok {
		return nil // the customer is not managed in this cluster
	}
	cus := &billingv1.Customer{}
	if err := w.client.Get(ctx, key, cus); err != nil {
		return client.IgnoreNotFound(err)
	}
	if held, ok := ctx.Value(heldLockKey{}).(uint32); !ok || held != lockIndex(cus) {
		unlock := w.lockTarget(cus)
		defer unlock()
	}
	if err := w.apiReader.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
		return client.IgnoreNotFound(err)
	}
	if len(cus.Status.Entitlements) == 0 {
		if uses, err := w.declaresFeatures(ctx, cus.Namespace); err != nil || !uses {
			return err
		}
	}
	_, err := w.readEntitlements(ctx, cus, at(ev), ev.Spec.Type)
	if apierrors.IsNotFound(err) || stripe.IsNotFound(err) {
		return nil // the customer is gone, in the cluster or in Stripe
	}
	return err
}

// declaresFeatures reports whether a namespace declares an entitlement feature: an EntitlementFeature, or a Product
// with spec.features (read from the cache, without copies: nothing is changed).
func (w *eventWorker) declaresFeatures(ctx context.Context, namespace string) (bool, error) {
	features := &billingv1.EntitlementFeatureList{}
	if err := w.client.List(ctx, features, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	if len(features.Items) > 0 {
		return true, nil
	}
	products := &billingv1.ProductList{}
	if err := w.client.List(ctx, products, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	for i := range products.Items {
		if len(products.Items[i].Spec.Features) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// heldLockKey marks in a context the stripe of targetLocks the worker holds.
type heldLockKey struct{}

// withHeldLock records that the worker holds o's stripe of targetLocks.
func withHeldLock(ctx context.Context, o billingv1.StripeObject) context.Context {
	return context.WithValue(ctx, heldLockKey{}, lockIndex(o))
}
