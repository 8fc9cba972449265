package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/fairness"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeevents,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeevents/status,verbs=get;update;patch

// indexEventRoute indexes unsettled StripeEvents by the Stripe ID they route by (see routeID).
const indexEventRoute = "routeID"

// Event routing gives up after this many attempts (the target may be created after its event arrives).
const maxRouteAttempts = 6

// eventWorker folds stored StripeEvents into the status of the billing object they concern.
type eventWorker struct {
	client client.Client
	// ids finds objects by Stripe ID, to route events that carry no metadata stamp.
	ids       *stripeIDs
	recorder  events.EventRecorder
	creds     *credentials.Resolver
	retention time.Duration
	backoff   time.Duration
	now       func() time.Time
	// webhooks: events flow, so the worker owns the kinds' lifecycle fields (see ownership.go).
	webhooks bool
	// apiReader reads a target from the API server, past the cache, before folding into it.
	apiReader client.Reader
	// observeOnly: every object is observed (--observe-only); a change made in Stripe is reported, not restored.
	observeOnly bool
	// ledger records processed events compactly (see eventledger.go); compactionDelay is how long a processed
	// StripeEvent keeps its payload first.
	ledger          *eventLedger
	compactionDelay time.Duration
	// entitlementReads: no entitlement summary events are delivered, so a subscription change reads its customer's
	// active entitlements (customer_entitlements.go).
	entitlementReads bool
}

// observed reports whether a change made in Stripe to target is only reported (managementPolicy Observe), not
// restored.
func (w *eventWorker) observed(target billingv1.StripeObject) bool {
	m, ok := target.(billingv1.Managed)
	return w.observeOnly || ok && m.GetManagementPolicy() == billingv1.ManagementObserve
}

// driftAction is what the operator does about a change made in Stripe to target, for the DriftDetected Event.
func (w *eventWorker) driftAction(target billingv1.StripeObject) string {
	if w.observed(target) {
		return "observed only: reported in status.drift, not restored"
	}
	return "restoring the spec"
}

func (w *eventWorker) owner() statusOwner {
	return statusOwner{name: ownerEvents, webhooks: w.webhooks}
}

// payload is what the worker reads of an event.
type payload struct {
	Request *struct {
		// ID is null for what Stripe does on its own (a renewal, a discount running out).
		ID             *string `json:"id"`
		IdempotencyKey *string `json:"idempotency_key"`
	} `json:"request"`
	Data struct {
		Object json.RawMessage `json:"object"`
		// PreviousAttributes are the changed fields' earlier values (Stripe's data.previous_attributes).
		PreviousAttributes map[string]json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
}

// objectFields is what routing reads of data.object.
type objectFields struct {
	ID           string            `json:"id"`
	Object       string            `json:"object"`
	Metadata     map[string]string `json:"metadata"`
	Subscription string            `json:"subscription"`
	// SubscriptionDetails carries, on an invoice, its subscription's metadata (so its stamp) at invoice creation.
	SubscriptionDetails *struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"`
	// Customer is, on a customer's tax ID, the customer it belongs to (an ID; other objects may expand it).
	Customer json.RawMessage `json:"customer"`
}

// taxIDCustomer is the customer a tax ID event, or an entitlement summary event, concerns, or "".
func (f objectFields) taxIDCustomer() string {
	var id string
	if (f.Object != resTaxID && f.Object != stripeObjectEntitlementSummary) || json.Unmarshal(f.Customer, &id) != nil {
		return ""
	}
	return id
}

func (w *eventWorker) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !w.ids.synced() {
		// Routing by Stripe ID would miss objects the map has not seen yet (after a start).
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	ev := &billingv1.StripeEvent{}
	if err := w.client.Get(ctx, req.NamespacedName, ev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ev.Status.Phase == billingv1.EventProcessed {
		return w.compact(ctx, ev)
	}
	if ev.Status.Phase != billingv1.EventFailed {
		if w.ledger.Queued(ev.Namespace, ev.Spec.EventID) {
			// Processed, and waiting for the ledger's next write (no Processed mark without a compaction delay).
			return ctrl.Result{RequeueAfter: compactRecheck}, nil
		}
		// A redelivery stored after its event was processed and compacted (a new StripeEvent of the same name).
		recorded, err := w.ledger.Recorded(ctx, ev.Namespace, ev.Spec.EventID)
		if err != nil {
			return ctrl.Result{}, err
		}
		if recorded {
			if w.ledger.Redelivery(ev) {
				eventRedeliveries.Inc()
			}
			return w.deleteRecorded(ctx, ev)
		}
	}
	now := w.now()
	settled := ev.Status.Phase == billingv1.EventFailed
	var target billingv1.StripeObject
	if ev.Status.Phase == billingv1.EventUnroutable {
		// Unroutable is not final while the event is kept: it is tried again when a billing object gets the Stripe
		// ID it names (see eventsRoutedBy), e.g. a create recorded only after a restart. (Dispute events route
		// through Stripe and are not retried here.)
		var err error
		if target, err = w.route(ctx, eventFields(ev, nil)); err != nil {
			return ctrl.Result{}, err
		}
		settled = target == nil
	}
	if settled {
		return w.collect(ctx, ev, now)
	}
	if whole, err := w.whole(ctx, ev); err != nil || !whole {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := ev.DeepCopy()
	ev.Status.Attempts++
	var p payload
	fields := eventFields(ev, &p)
	what := fields.Object + " " + fields.ID
	var dispute *stripego.Dispute
	if isDisputeEvent(ev.Spec.Type) {
		d, customerID, err := w.resolveDispute(ctx, ev, p)
		var se *stripe.Error
		switch {
		case errors.As(err, &se) && (se.Class == stripe.ClassNotFound || se.Class == stripe.ClassInvalidRequest):
			// Retrying cannot help: the dispute or its payment is not in this account.
			return w.settle(ctx, ev, base, billingv1.EventFailed, "reading the disputed payment: "+err.Error(), d)
		case err != nil:
			// Stripe unavailable, or credentials that a person must fix: retried with backoff, so the event stays
			// pending (and the backlog alerts fire) until it can be read.
			return ctrl.Result{}, err
		case customerID == "":
			return w.settle(ctx, ev, base, billingv1.EventUnroutable, "the payment disputed by "+d.ID+
				" has no customer", d)
		}
		dispute = d
		fields = objectFields{ID: customerID, Object: "customer"}
		what = "customer " + customerID + " (dispute " + d.ID + ")"
	}
	if target == nil {
		var err error
		if target, err = w.route(ctx, fields); err != nil {
			return ctrl.Result{}, err
		}
	}
	if target == nil {
		if ev.Status.Attempts >= maxRouteAttempts {
			return w.settle(ctx, ev, base, billingv1.EventUnroutable, "no billing object in this cluster matches "+
				what, dispute)
		}
		ev.Status.Message = "waiting for the billing object of " + what
		if err := w.client.Status().Patch(ctx, ev, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, err
		}
		// Out-of-order delivery: the object may not have its Stripe ID yet.
		return ctrl.Result{RequeueAfter: time.Duration(ev.Status.Attempts*ev.Status.Attempts) * w.backoff}, nil
	}
	ev.Status.Target = &billingv1.EventTarget{Kind: kindName(target), Namespace: target.GetNamespace(),
		Name: target.GetName()}
	ctx = fairness.WithTenant(ctx, target.GetNamespace()) // its Stripe reads are the target's namespace's
	// The worker is the only writer of the fields it folds into, but it folds several events at once and its cache
	// lags behind its own writes: one target at a time, read from the API server.
	unlock := w.lockTarget(target)
	defer unlock()
	ctx = withHeldLock(ctx, target)
	if w.apiReader != nil {
		err := w.apiReader.Get(ctx, client.ObjectKeyFromObject(target), target)
		if apierrors.IsNotFound(err) {
			// Deleted since the cache saw it: there is no status to fold into.
			return w.settle(ctx, ev, base, billingv1.EventProcessed, "the billing object was deleted", dispute)
		}
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	var msg string
	var err error
	if dispute != nil {
		msg, err = w.applyDispute(ctx, ev, dispute, target)
	} else {
		msg, err = w.apply(ctx, ev, p, target)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return w.settle(ctx, ev, base, billingv1.EventProcessed, msg, dispute)
}

// collect deletes a Failed or Unroutable event once its retention is over: until then it keeps its payload, for a
// person to look at.
func (w *eventWorker) collect(ctx context.Context, ev *billingv1.StripeEvent, now time.Time) (ctrl.Result, error) {
	if ev.Status.ProcessedAt != nil {
		if left := ev.Status.ProcessedAt.Add(w.retention).Sub(now); left > 0 {
			return ctrl.Result{RequeueAfter: left}, nil
		}
	}
	return ctrl.Result{}, client.IgnoreNotFound(w.client.Delete(ctx, ev))
}

// whole makes ev the event as stored when the cache holds only what routing reads of its payload (see
// StripForCache); false when it was settled since the cache saw it (its own update re-queues it).
func (w *eventWorker) whole(ctx context.Context, ev *billingv1.StripeEvent) (bool, error) {
	if !routingPayloadOnly(ev) || w.apiReader == nil {
		return true, nil
	}
	if err := w.apiReader.Get(ctx, client.ObjectKeyFromObject(ev), ev); err != nil {
		return false, err
	}
	return ev.Status.Phase != billingv1.EventProcessed && ev.Status.Phase != billingv1.EventFailed, nil
}

// targetLocks serialize the worker's read-fold-write of one billing object (striped by UID).
var targetLocks [256]sync.Mutex

func (w *eventWorker) lockTarget(o billingv1.StripeObject) func() {
	m := &targetLocks[lockIndex(o)]
	m.Lock()
	return m.Unlock
}

// lockIndex is o's stripe of targetLocks.
func lockIndex(o billingv1.StripeObject) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(o.GetUID()))
	return h.Sum32() % uint32(len(targetLocks))
}

// eventFields reads what routing needs of an event's object: from the payload (also decoded into p when given),
// else from the spec.
func eventFields(ev *billingv1.StripeEvent, p *payload) objectFields {
	if p == nil {
		p = &payload{}
	}
	var fields objectFields
	if ev.Spec.Payload != "" {
		if err := json.Unmarshal([]byte(ev.Spec.Payload), p); err == nil {
			_ = json.Unmarshal(p.Data.Object, &fields)
		}
	}
	if fields.ID == "" {
		fields.ID, fields.Object = ev.Spec.ObjectID, ev.Spec.ObjectType
	}
	return fields
}

// routeID is the Stripe ID by which an event not yet settled finds its billing object when no stamp leads to it:
// the object's own ID, or an invoice's subscription. Dispute events have none (their customer is read from Stripe).
func routeID(ev *billingv1.StripeEvent) string {
	if ev.Status.Phase == billingv1.EventProcessed || ev.Status.Phase == billingv1.EventFailed ||
		isDisputeEvent(ev.Spec.Type) {
		return ""
	}
	f := eventFields(ev, nil)
	if f.Object == "invoice" || f.Object == stripeObjectDiscount {
		return f.Subscription
	}
	if f.Object == resTaxID || f.Object == stripeObjectEntitlementSummary {
		return f.taxIDCustomer()
	}
	if _, ok := kindByStripeObject(f.Object); ok {
		return f.ID
	}
	return ""
}

// eventsRoutedBy maps a billing object to the unsettled StripeEvents that route by its Stripe ID, so that events
// which arrived before the object's ID was recorded are tried again at once.
func eventsRoutedBy(c client.Client, ids *stripeIDs, kind string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		so, ok := o.(billingv1.StripeObject)
		if !ok || so.GetStripeStatus().ID == "" {
			return nil
		}
		// The map of Stripe IDs is fed by another notification of the same change, which informers deliver in no
		// order with this one: record the ID first, or the events re-queued here may find nothing and stay
		// Unroutable.
		ids.add(kind, so)
		l := &billingv1.StripeEventList{}
		if err := c.List(ctx, l, client.MatchingFields{indexEventRoute: so.GetStripeStatus().ID}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing the StripeEvents of an object")
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(l.Items))
		for _, ev := range l.Items {
			if ev.Status.Attempts == 0 {
				// Not tried yet: it is in the queue already, and a second pass read from a cache behind the first
				// one's write would process it twice.
				continue
			}
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ev)})
		}
		return reqs
	})
}

// settle puts the event in a final phase and, for a dispute event, counts the dispute.
func (w *eventWorker) settle(ctx context.Context, ev, base *billingv1.StripeEvent, phase billingv1.StripeEventPhase,
	msg string, d *stripego.Dispute) (ctrl.Result, error) {
	if phase != billingv1.EventFailed {
		// Whether or not the subscription is still in the cluster, its customer's entitlements may have changed.
		if err := w.refreshEntitlements(ctx, ev); err != nil {
			return ctrl.Result{}, err
		}
	}
	w.finish(ev, phase, msg)
	if phase == billingv1.EventProcessed && w.compactionDelay == 0 {
		// No Processed mark: the ledger records the event, then it is deleted (eventledger.go). The ledger's notice,
		// or this, compacts it.
		if isDisputeEvent(ev.Spec.Type) {
			countDispute(ev.Spec.Type, d)
		}
		w.ledger.Add(ledgerEntryOf(ev))
		return ctrl.Result{RequeueAfter: compactRecheck}, nil
	}
	if err := w.client.Status().Patch(ctx, ev, client.MergeFrom(base)); err != nil {
		return ctrl.Result{}, err
	}
	if isDisputeEvent(ev.Spec.Type) {
		countDispute(ev.Spec.Type, d)
	}
	if phase == billingv1.EventProcessed {
		// The worker's own write does not re-queue the event: once the delay is over, compact records and deletes it.
		return ctrl.Result{RequeueAfter: w.compactionDelay}, nil
	}
	// Collected after the retention (the worker's own write does not re-queue the event).
	return ctrl.Result{RequeueAfter: w.retention}, nil
}

// compactRecheck is when a processed event whose entry was queued is looked at again, should the ledger's notice
// that it is recorded have been missed.
const compactRecheck = 20 * ledgerFlushEvery

// compact records a processed event in the ledger, then deletes it (eventledger.go): a crash between the two
// leaves it Processed, and it is recorded (once) and deleted after the restart.
func (w *eventWorker) compact(ctx context.Context, ev *billingv1.StripeEvent) (ctrl.Result, error) {
	if ev.Status.ProcessedAt != nil {
		if left := ev.Status.ProcessedAt.Add(w.compactionDelay).Sub(w.now()); left > 0 {
			return ctrl.Result{RequeueAfter: left}, nil
		}
	}
	recorded, err := w.ledger.Recorded(ctx, ev.Namespace, ev.Spec.EventID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if recorded {
		return w.deleteRecorded(ctx, ev)
	}
	w.ledger.Add(ledgerEntryOf(ev))
	return ctrl.Result{RequeueAfter: compactRecheck}, nil
}

// deleteRecorded deletes a StripeEvent whose event the ledger records.
func (w *eventWorker) deleteRecorded(ctx context.Context, ev *billingv1.StripeEvent) (ctrl.Result, error) {
	if err := client.IgnoreNotFound(w.client.Delete(ctx, ev)); err != nil {
		return ctrl.Result{}, err
	}
	w.ledger.Deleted(ev)
	return ctrl.Result{}, nil
}

func ledgerEntryOf(ev *billingv1.StripeEvent) ledgerEntry {
	return ledgerEntry{namespace: ev.Namespace, eventID: ev.Spec.EventID, name: ev.Name, uid: ev.UID,
		target: targetRef(ev.Status.Target)}
}

// resolveDispute reads the event's dispute and the Stripe customer whose payment it disputes, with the credentials
// of the namespace the event is stored in (the operator-wide Secret, whose key received it).
func (w *eventWorker) resolveDispute(ctx context.Context, ev *billingv1.StripeEvent, p payload) (
	*stripego.Dispute, string, error) {
	res, err := w.creds.For(ctx, ev.Namespace)
	if err != nil {
		return nil, "", err
	}
	d, err := readDispute(ctx, res.Client, ev, p)
	if err != nil {
		return nil, "", err
	}
	id, err := disputedCustomer(ctx, res.Client, d)
	return d, id, err
}

func (w *eventWorker) finish(ev *billingv1.StripeEvent, phase billingv1.StripeEventPhase, msg string) {
	t := metav1.NewTime(w.now())
	ev.Status.Phase, ev.Status.ProcessedAt, ev.Status.Message = phase, &t, msg
}

// route finds the billing object an event concerns: by the operator's metadata stamp, else by Stripe ID; an
// invoice routes through its subscription.
func (w *eventWorker) route(ctx context.Context, f objectFields) (billingv1.StripeObject, error) {
	if k, ok := kindByStripeObject(f.Object); ok && f.Metadata[billingv1.MetadataUID] != "" &&
		f.Metadata[billingv1.MetadataKind] == k.kind {
		obj := k.newObject()
		key := types.NamespacedName{Namespace: f.Metadata[billingv1.MetadataNamespace],
			Name: f.Metadata[billingv1.MetadataName]}
		err := w.client.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) && w.apiReader != nil {
			// The object may be newer than the cache (an event of a create that just happened).
			err = w.apiReader.Get(ctx, key, obj)
		}
		if err == nil && string(obj.GetUID()) == f.Metadata[billingv1.MetadataUID] {
			return obj, nil
		}
		if client.IgnoreNotFound(err) != nil {
			return nil, err
		}
	}
	object, id := f.Object, f.ID
	if f.Object == "invoice" || f.Object == stripeObjectDiscount { // a discount of a subscription: customer.discount.*
		object, id = "subscription", f.Subscription
		if f.SubscriptionDetails != nil {
			// The subscription's stamp: routes even before the subscription's ID is recorded.
			return w.route(ctx, objectFields{Object: "subscription", Metadata: f.SubscriptionDetails.Metadata,
				ID: f.Subscription})
		}
	}
	if f.Object == resTaxID || f.Object == stripeObjectEntitlementSummary {
		object, id = "customer", f.taxIDCustomer() // a customer's tax ID or entitlements route to its customer
	}
	k, ok := kindByStripeObject(object)
	if !ok || id == "" {
		return nil, nil
	}
	key, ok := w.ids.get(k.kind, id)
	if !ok {
		return nil, nil
	}
	obj := k.newObject()
	if err := w.client.Get(ctx, key, obj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if obj.GetStripeStatus().ID != id {
		return nil, nil // the map is behind the cache: the event is retried
	}
	return obj, nil
}

// apply folds the event into the target's status, writing only the fields the worker owns (see ownership.go), and
// only when they change. The payload is the truth: an event at least as new as what status holds is folded without
// reading Stripe. The worker asks the reconciler for a read (status.syncRequest) only for what a payload cannot say:
// a payload of another API version, a deletion to confirm, and a change made outside the operator, which that
// reconcile undoes.
func (w *eventWorker) apply(ctx context.Context, ev *billingv1.StripeEvent, p payload,
	target billingv1.StripeObject) (string, error) {
	if ev.Spec.Type == eventEntitlementSummary {
		// Ordered by status.entitlementsConfirmedAt, not by the customer's other events.
		return w.foldEntitlementSummary(ctx, ev, p, target)
	}
	st := target.GetStripeStatus()
	if ev.Spec.Created < st.LastEventCreated {
		return "older than what the status holds", nil
	}
	if st.LastEventID == ev.Spec.EventID {
		// Folded already (the fold and lastEventID are one write); the worker stopped before marking the event
		// Processed. Folding it again would put its payload over anything read from Stripe since.
		return "already folded into status", nil
	}
	base := target.DeepCopyObject().(billingv1.StripeObject)
	// Stripe's `created` has a resolution of one second: on a tie the order of two events is unknown, so a creation
	// event (which can only be the first) does not override what a later event of the same second brought.
	tie := ev.Spec.Created == st.LastEventCreated
	trusted := len(p.Data.Object) > 0 && (ev.Spec.APIVersion == "" || ev.Spec.APIVersion == stripego.APIVersion)
	ours := p.Request != nil && p.Request.IdempotencyKey != nil &&
		strings.HasPrefix(*p.Request.IdempotencyKey, "k8s-"+string(target.GetUID()))
	msg, resync := msgFolded, false
	typ := ev.Spec.Type
	switch {
	case strings.HasPrefix(typ, "customer.discount."):
		msg, resync = w.discountEvent(ev, p, target, ours)
	case strings.HasPrefix(typ, "customer.tax_id."):
		msg, resync = w.taxIDEvent(ev, target, ours)
	case strings.HasSuffix(typ, ".deleted") && typ != "customer.subscription.deleted":
		if target.GetDeletionTimestamp().IsZero() {
			// The reconciler confirms it with a read and marks the object DeletedInStripe (it owns Ready/Stalled).
			resync, msg = true, "the Stripe object was deleted"
		}
	case strings.HasPrefix(typ, "customer.subscription."):
		msg, resync = foldSubscriptionEvent(ev, p, target, trusted, tie)
		if groups := eventChangedGroups(p.Data.PreviousAttributes); !ours && len(groups) > 0 &&
			typ == "customer.subscription.updated" && target.GetDeletionTimestamp().IsZero() {
			// Changed outside the operator: the reconciler reads it and restores or follows it, as the spec says.
			resync, msg = true, w.changedInStripe(target, ev, groups)
		}
	case strings.HasPrefix(typ, "invoice."):
		msg, resync = w.foldInvoiceEvent(ctx, ev, p, target, trusted)
	default: // customer.*, product.*, price.* created or updated
		if !ours {
			resync, msg = true, "changed outside the operator; read again"
			w.recorder.Eventf(target, nil, corev1.EventTypeWarning, reasonDriftDetected, "Reconcile",
				"%s changed in Stripe outside the operator (event %s); %s", st.ID, ev.Spec.EventID,
				w.driftAction(target))
		} else {
			msg = msgOwnChange
		}
	}
	if resync {
		st.SyncRequest = ev.Spec.EventID
	}
	owner := w.owner()
	// An event that changes nothing the worker owns is not written: lastEventID and lastEventCreated order the
	// events that change status, and the receiver recognises redeliveries by the StripeEvent's name.
	if same, err := owner.sameAs(base, target, "lastEventID", "lastEventCreated"); err != nil || same {
		return msg + " (no change)", err
	}
	st.LastEventID, st.LastEventCreated = ev.Spec.EventID, ev.Spec.Created
	if err := owner.apply(ctx, w.client, base, target); err != nil {
		return "", err
	}
	w.paymentFailedEvent(base, target)
	return msg, nil
}

// reasonDriftDetected is the reason of the Warning Event a change made in Stripe outside the operator raises.
const reasonDriftDetected = "DriftDetected"

// changedInStripe announces a change made to a subscription in Stripe outside the operator, once per event: a
// Warning DriftDetected for the groups of spec fields that will be restored, a Normal ChangedInStripe for those
// changesInStripe Follow keeps.
func (w *eventWorker) changedInStripe(target billingv1.StripeObject, ev *billingv1.StripeEvent,
	groups []string) string {
	sub, ok := target.(*billingv1.Subscription)
	if !ok {
		return "changed outside the operator"
	}
	var restore, follow []string
	for _, g := range groups {
		if following(&sub.Spec, g) && !w.observed(target) {
			follow = append(follow, g)
		} else {
			restore = append(restore, g)
		}
	}
	id := sub.Status.ID
	if len(restore) > 0 {
		w.recorder.Eventf(target, nil, corev1.EventTypeWarning, reasonDriftDetected, "Reconcile",
			"%s changed in Stripe outside the operator (event %s): %s; %s", id, ev.Spec.EventID,
			strings.Join(restore, ", "), w.driftAction(target))
	}
	if len(follow) > 0 {
		w.recorder.Eventf(target, nil, corev1.EventTypeNormal, billingv1.ReasonChangedInStripe, "Reconcile",
			"%s changed in Stripe outside the operator (event %s): %s; kept (changesInStripe: Follow)", id,
			ev.Spec.EventID, strings.Join(follow, ", "))
	}
	return fmt.Sprintf("changed outside the operator (%s); read again", strings.Join(groups, ", "))
}

// discountEvent handles a customer.discount.* event of a subscription: the operator's own change needs nothing; a
// discount Stripe removed on its own (it ran out) is read, so status records it ended; a change made by someone else
// is a change made in Stripe, which the read restores or follows (changesInStripe).
func (w *eventWorker) discountEvent(ev *billingv1.StripeEvent, p payload, target billingv1.StripeObject,
	ours bool) (string, bool) {
	switch {
	case ours:
		return msgOwnChange, false
	case p.Request == nil || p.Request.ID == nil:
		return "Stripe changed the discount on its own; re-read from Stripe", true
	}
	// Restored or followed as changesInStripe says.
	return w.changedInStripe(target, ev, []string{groupDiscount}), true
}

// stripeObjectDiscount is Stripe's object type of a discount (customer.discount.* events).
const stripeObjectDiscount = "discount"

// taxIDEvent handles a customer.tax_id.* event: Stripe's verification of a tax ID (updated) is read into status;
// a tax ID created or deleted outside the operator is drift, which the read undoes; the operator's own creations
// and deletions change nothing status lacks.
func (w *eventWorker) taxIDEvent(ev *billingv1.StripeEvent, target billingv1.StripeObject, ours bool) (string,
	bool) {
	switch {
	case ev.Spec.Type == "customer.tax_id.updated":
		return "a tax ID's verification changed; re-read from Stripe", true
	case ours:
		return msgOwnChange, false
	}
	w.recorder.Eventf(target, nil, corev1.EventTypeWarning, reasonDriftDetected, "Reconcile",
		"A tax ID of %s changed in Stripe outside the operator (event %s); %s",
		target.GetStripeStatus().ID, ev.Spec.EventID, w.driftAction(target))
	return "a tax ID changed outside the operator; read again", true
}

// msgOwnChange is what an event of the operator's own request says.
const msgOwnChange = "the operator's own change"

// msgFolded is what a folded event says.
const msgFolded = "folded into status"

// reReadMessage is what an event whose payload cannot be folded says.
func reReadMessage(ev *billingv1.StripeEvent) string {
	return "re-read from Stripe (payload of API version " + ev.Spec.APIVersion + ")"
}

// foldSubscriptionEvent folds a customer.subscription.* event; resync asks for a read from Stripe instead.
func foldSubscriptionEvent(ev *billingv1.StripeEvent, p payload, target billingv1.StripeObject, trusted,
	tie bool) (msg string, resync bool) {
	sub, ok := target.(*billingv1.Subscription)
	var s stripego.Subscription
	switch {
	case !ok || !trusted || json.Unmarshal(p.Data.Object, &s) != nil:
		return reReadMessage(ev), true
	case ev.Spec.Type == "customer.subscription.created" && sub.Status.StripeState != "":
		// The create's answer (or a later read or event) is at least as new as the creation.
		return "the creation, which status already holds", false
	case tie && s.LatestInvoice != nil && sub.Status.LatestInvoice != nil &&
		s.LatestInvoice.ID != sub.Status.LatestInvoice.ID:
		// Two events of the same second name different invoices: their order is unknown.
		return "events of the same second disagree on the latest invoice; re-read from Stripe", true
	}
	setSubscriptionStatus(sub, &s)
	return msgFolded, false
}

// foldInvoiceEvent folds an invoice.* event into its subscription; resync asks for a read from Stripe instead.
func (w *eventWorker) foldInvoiceEvent(ctx context.Context, ev *billingv1.StripeEvent, p payload,
	target billingv1.StripeObject, trusted bool) (msg string, resync bool) {
	sub, ok := target.(*billingv1.Subscription)
	var in stripego.Invoice
	if !ok || !trusted || json.Unmarshal(p.Data.Object, &in) != nil {
		return reReadMessage(ev), true
	}
	// An invoice's state only moves forward (draft, open, then paid, void or uncollectible): a payload with an
	// earlier state of the invoice status holds is older, whatever the events' order.
	if sub.Status.LatestInvoice != nil && sub.Status.LatestInvoice.ID == in.ID &&
		invoiceRank(string(in.Status)) < invoiceRank(sub.Status.LatestInvoice.Status) {
		return "an invoice state older than what status holds", false
	}
	why := ""
	if ev.Spec.Type == "invoice.payment_failed" && in.PaymentIntent != nil && !failingFor(sub, in.ID) {
		why = w.failureReason(ctx, sub, &in)
	}
	foldInvoice(sub, &in, ev.Spec.Type, ev.Spec.EventID, why)
	return msgFolded, false
}

// invoiceRank orders an invoice's states: a draft is finalized (open), then paid, voided or marked uncollectible.
func invoiceRank(status string) int {
	switch status {
	case "draft":
		return 0
	case "open":
		return 1
	case "":
		return -1
	}
	return 2
}

// failureReason explains a failed payment of an invoice with one read of its payment intent (the invoice's payload
// does not carry the decline). It is called once per failed invoice: a later failure of the same invoice keeps the
// condition the first one set (see failingFor).
func (w *eventWorker) failureReason(ctx context.Context, sub *billingv1.Subscription, in *stripego.Invoice) string {
	res, err := w.creds.For(ctx, sub.GetNamespace())
	if err != nil {
		return ""
	}
	return declineMessage(ctx, res.Client, in.PaymentIntent.ID)
}

// errHandoverDropped says a handover was not written: the object changed since the reconciler read it.
var errHandoverDropped = errors.New("the object changed since it was read; the read was not handed over")

// handover writes what the reconciler read from Stripe of the fields the worker owns (a subscription's state,
// period and latest invoice), unless an event newer than the read was folded meanwhile. It writes with the
// resourceVersion of the object the reconciler read. If anything wrote the object since, what the worker wrote is
// at least as new as the read, but it may not hold every field the read brings (an invoice event folded before a
// create's handover brings the latest invoice, not the subscription's state): the fields status still lacks are
// taken from the read, and the rest of the read is dropped. A dropped handover costs no Stripe call.
func (w *eventWorker) handover(ctx context.Context, base, obj billingv1.StripeObject) error {
	unlock := w.lockTarget(obj)
	defer unlock()
	owner := w.owner()
	if same, err := owner.sameAs(base, obj); err != nil || same {
		return err
	}
	err := owner.applyAt(ctx, w.client, obj, obj.GetResourceVersion())
	if err == nil {
		w.paymentFailedEvent(base, obj)
		return nil
	}
	for try := 0; apierrors.IsConflict(err) && try < 3; try++ {
		// Only lifecycle fields are filled: conditions (PaymentFailed) are what the events folded meanwhile say.
		var filled billingv1.StripeObject
		if filled, err = w.fillMissing(ctx, obj); err != nil || filled == nil {
			if err == nil {
				ctrl.LoggerFrom(ctx).V(1).Info("Dropped a Stripe read older than the status written since")
				err = errHandoverDropped
			}
			return err
		}
		err = owner.applyAt(ctx, w.client, filled, filled.GetResourceVersion())
	}
	if apierrors.IsConflict(err) {
		return errHandoverDropped
	}
	return err
}

// fillMissing reads obj as stored and returns it with the fields the worker owns that it lacks and read has (a
// Stripe read handed over), or nil when it lacks none of them (or is gone).
func (w *eventWorker) fillMissing(ctx context.Context, read billingv1.StripeObject) (billingv1.StripeObject, error) {
	if w.apiReader == nil {
		return nil, nil
	}
	owner := w.owner()
	want, err := owner.project(read)
	if err != nil {
		return nil, err
	}
	cur := read.DeepCopyObject().(billingv1.StripeObject)
	if err := w.apiReader.Get(ctx, client.ObjectKeyFromObject(read), cur); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if cur.GetUID() != read.GetUID() {
		return nil, nil
	}
	have, err := owner.project(cur)
	if err != nil {
		return nil, err
	}
	kind, err := kindOf(cur)
	if err != nil {
		return nil, err
	}
	k, ok := kindByName(kind)
	if !ok || len(k.lifecycleFields) == 0 {
		return nil, nil
	}
	if _, ok := have[k.lifecycleFields[0]]; ok {
		// An event brought the object's state, at least as new as the read: a field it lacks is one it cleared
		// (cancelAtPeriodEnd false is left out of status).
		return nil, nil
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cur)
	if err != nil {
		return nil, err
	}
	status, _ := u["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
		u["status"] = status
	}
	n := 0
	for field, v := range want {
		// Conditions and the fields only events bring (lastEventID, disputes, ...) are not the read's to fill.
		if _, ok := have[field]; ok || !slices.Contains(k.lifecycleFields, field) {
			continue
		}
		status[field] = v
		n++
	}
	if n == 0 {
		return nil, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, cur); err != nil {
		return nil, err
	}
	return cur, nil
}

// paymentFailedEvent emits a Warning Event when PaymentFailed turns True.
func (w *eventWorker) paymentFailedEvent(before, after billingv1.StripeObject) {
	c := meta.FindStatusCondition(after.GetStripeStatus().Conditions, billingv1.ConditionPaymentFailed)
	if c == nil || c.Status != metav1.ConditionTrue ||
		meta.IsStatusConditionTrue(before.GetStripeStatus().Conditions, billingv1.ConditionPaymentFailed) {
		return
	}
	w.recorder.Eventf(after, nil, corev1.EventTypeWarning, billingv1.ReasonPaymentFailed, "Payment", "%s", c.Message)
}

// failedPaymentMessage says which invoice's payment failed and, when known, why.
func failedPaymentMessage(in *stripego.Invoice, why string) string {
	msg := fmt.Sprintf("The payment of invoice %s (%d %s) failed", in.ID, in.AmountDue, in.Currency)
	if why != "" {
		msg += ": " + why
	}
	return msg
}

// failingFor reports whether PaymentFailed is True for invoice id already (the message foldInvoice wrote names it).
func failingFor(sub *billingv1.Subscription, id string) bool {
	c := meta.FindStatusCondition(sub.Status.Conditions, billingv1.ConditionPaymentFailed)
	return c != nil && c.Status == metav1.ConditionTrue && strings.HasPrefix(c.Message, "The payment of invoice "+id+" ")
}

// foldInvoice records the latest invoice and the payment health it shows.
func foldInvoice(sub *billingv1.Subscription, in *stripego.Invoice, typ, eventID, why string) {
	// Events older than what status holds were skipped already, so this invoice is the latest known.
	sub.Status.LatestInvoice = invoiceSummary(in)
	switch typ {
	case "invoice.payment_failed", "invoice.payment_action_required":
		if failingFor(sub, in.ID) {
			return // the first failure of this invoice said why; its retries do not change the condition
		}
		msg := failedPaymentMessage(in, why)
		if typ == "invoice.payment_action_required" {
			msg = fmt.Sprintf("The payment of invoice %s needs the customer to authenticate (3-D Secure)", in.ID)
		}
		if eventID != "" {
			msg += " [" + eventID + "]"
		}
		meta.SetStatusCondition(&sub.Status.Conditions, metav1.Condition{Type: billingv1.ConditionPaymentFailed,
			Status: metav1.ConditionTrue, Reason: billingv1.ReasonPaymentFailed, Message: msg,
			ObservedGeneration: sub.Generation})
	case "invoice.paid", "invoice.payment_succeeded":
		meta.SetStatusCondition(&sub.Status.Conditions, metav1.Condition{Type: billingv1.ConditionPaymentFailed,
			Status: metav1.ConditionFalse, Reason: billingv1.ReasonPaymentSucceeded,
			Message: "Invoice " + in.ID + " was paid", ObservedGeneration: sub.Generation})
	}
}
