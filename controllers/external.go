package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/fairness"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Observation is what Observe found in Stripe.
type Observation struct {
	// Exists is false when Stripe answers 404 or reports the object deleted.
	Exists bool
	// UpToDate is true when Stripe matches the spec.
	UpToDate bool
	// Replace asks for a successor object (a Price whose immutable fields changed): the loop creates it with the
	// crash-safe create, then calls Replaced.
	Replace bool
	// Current is the Stripe object Observe read; Update diffs against it instead of reading it again.
	Current any
	// Drift lists, field by field, what Update (or a replacement) would change: the spec's value and Stripe's. It
	// is what an observed object reports in status.drift, so each kind's Observe fills it from the same comparison
	// that decides UpToDate.
	Drift []billingv1.FieldDrift
}

// External is the per-kind part of a controller: it maps spec to Stripe parameters and the Stripe object to status.
// The generic Reconciler owns finalizers, crash-safe create, conditions, events and requeues.
type External[T billingv1.StripeObject] interface {
	// Kind is the Kubernetes kind, stamped into Stripe metadata.
	Kind() string
	// Dependencies reports whether the objects this one references have Stripe IDs. No Stripe call is made while
	// they do not.
	Dependencies(ctx context.Context, obj T) (ready bool, msg string, err error)
	// Stale reports, without calling Stripe, whether status no longer matches what the referenced objects say
	// (a Price rolled to a successor, a Product re-created): such an object is reconciled even when in sync.
	Stale(ctx context.Context, obj T) (bool, error)
	// Observe reads the Stripe object named by status.id (or, when adopting, by adoptID) and fills status.
	// stamp is the metadata the operator stamps, for the comparison.
	Observe(ctx context.Context, c *stripe.Client, obj T, id string, p stripe.Priority,
		stamp map[string]string) (Observation, error)
	// Create creates the Stripe object with the idempotency key and the metadata stamp, fills status, and returns
	// its ID.
	Create(ctx context.Context, c *stripe.Client, obj T, key string, stamp map[string]string) (string, error)
	// Find lists the objects created since `since` that carry obj's UID stamp and are not obj's current or previous
	// objects, and returns the newest one's ID, or "".
	Find(ctx context.Context, c *stripe.Client, obj T, since time.Time) (string, error)
	// AdoptID returns the Stripe ID named by spec.adopt (looking it up if needed), or "" when there is none.
	AdoptID(ctx context.Context, c *stripe.Client, obj T) (string, error)
	// Update brings the Stripe object in line with the spec, sending only what differs from obs.Current.
	Update(ctx context.Context, c *stripe.Client, obj T, stamp map[string]string, obs Observation) error
	// Replaced finishes a replacement of oldID by newID. It runs before status.id moves to newID, and again after
	// a crash or an error (the pending record stays until it succeeds), so it must be idempotent.
	Replaced(ctx context.Context, c *stripe.Client, obj T, oldID, newID string) error
	// Delete carries out the deletion policy in Stripe; a missing object is success.
	Delete(ctx context.Context, c *stripe.Client, obj T) error
}

// Options are the loop's settings, shared by every kind.
type Options struct {
	// ResyncInterval is how often an in-sync object is re-read from Stripe (jittered by ±10%).
	ResyncInterval time.Duration
	// ResyncSweep is how often each kind's cache is swept for objects whose resync is due (default: a twentieth of
	// ResyncInterval, between a second and 30 seconds).
	ResyncSweep time.Duration
	// ClusterName is stamped into Stripe metadata as k8s_cluster.
	ClusterName string
	// ReplayWindow is how long a pending create may replay its idempotency key (below Stripe's 24 h).
	ReplayWindow time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxConcurrentReconciles is the number of workers per kind (default 4).
	MaxConcurrentReconciles int
	// EventRetention is how long processed events are recognised as such, in the event ledger (default 96 h, above
	// Stripe's 3-day retry horizon), and how long Failed and Unroutable StripeEvents are kept.
	EventRetention time.Duration
	// EventCompactionDelay is how long a processed StripeEvent keeps its payload before the worker records it in
	// the event ledger and deletes it (default 0: at once).
	EventCompactionDelay time.Duration
	// EventRouteBackoff is the base of the backoff for an event whose object is not known yet (attempt² × base,
	// default 1 s).
	EventRouteBackoff time.Duration
	// Webhooks says Stripe's events reach the operator (its receiver, or a receiver-only deployment): the event
	// worker then owns the fields Stripe changes on its own (see ownership.go), and the loop hands its reads of
	// them over; without events the loop writes them itself.
	Webhooks bool
	// ObserveOnly observes every object, as managementPolicy Observe does: Stripe is read, never written.
	ObserveOnly bool
	// EntitlementReads: Stripe's entitlements.active_entitlement_summary.updated events are not delivered, so the
	// event worker reads a customer's active entitlements once per change of one of its subscriptions instead.
	EntitlementReads bool
	// ReferenceGrace is how long a reference to an object that does not exist, or has no Stripe ID, is reported as
	// Reconciling before it turns Stalled (ReferenceNotFound), so that kstatus reports Failed (default 5 minutes).
	ReferenceGrace time.Duration
	// NamespaceWeights are the namespaces' shares of the work queues while several wait (default 1 each).
	NamespaceWeights fairness.Weights
	// DriftLoopWindow is how soon a change made in Stripe coming back after the operator restored it stops the
	// restoring (Stalled, reason DriftLoop; default 10 minutes).
	DriftLoopWindow time.Duration
}

// driftLoopWindow is the option, or its default.
func (o Options) driftLoopWindow() time.Duration {
	if o.DriftLoopWindow > 0 {
		return o.DriftLoopWindow
	}
	return defaultDriftLoopWindow
}

// now is the option's clock, or time.Now.
func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// DefaultReferenceGrace is the default of Options.ReferenceGrace.
const DefaultReferenceGrace = 5 * time.Minute

// Reconciler is the generic external-resource loop for one kind.
type Reconciler[T billingv1.StripeObject] struct {
	Client client.Client
	// APIReader reads the API server directly, past the cache (to confirm a pending create before listing Stripe).
	APIReader   client.Reader
	Recorder    events.EventRecorder
	Credentials *credentials.Resolver
	External    External[T]
	Options     Options
	// New returns an empty object of the kind.
	New func() T
	// Handover, when events flow, writes what the loop read from Stripe of the fields the event worker owns.
	Handover func(ctx context.Context, base, obj billingv1.StripeObject) error

	// refused holds the idempotency keys of creates Stripe refused with a 429 rate_limit (see create).
	refused sync.Map
}

func (r *Reconciler[T]) now() time.Time { return r.Options.now() }

// observing reports whether obj is observed only: its managementPolicy is Observe, or the operator observes
// everything. Nothing is written to Stripe for it.
func (r *Reconciler[T]) observing(obj T) bool {
	if r.Options.ObserveOnly {
		return true
	}
	m, ok := any(obj).(billingv1.Managed)
	return ok && m.GetManagementPolicy() == billingv1.ManagementObserve
}

func (r *Reconciler[T]) owner() statusOwner {
	return statusOwner{name: ownerReconciler, webhooks: r.Options.Webhooks}
}

// Reconcile implements reconcile.Reconciler: get, snapshot, one deferred status write of the fields the loop owns,
// then delete or reconcile.
func (r *Reconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := r.New()
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if PendingCreate(obj) != nil && r.APIReader != nil {
		// The cache may be behind this loop's own last status write, which recorded the create: confirm with the
		// API server before treating it as interrupted (recovery lists Stripe).
		if err := r.APIReader.Get(ctx, req.NamespacedName, obj); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	log := ctrl.LoggerFrom(ctx).WithValues(r.External.Kind(), klog.KObj(obj))
	ctx = fairness.WithTenant(ctrl.LoggerInto(ctx, log), req.Namespace)

	base := obj.DeepCopyObject().(T)
	before := readyOf(obj)
	defer func() {
		if err := r.owner().apply(ctx, r.Client, base, obj); err != nil {
			retErr = errors.Join(retErr, err)
			return
		}
		r.recordTransition(obj, before)
	}()

	if !obj.GetDeletionTimestamp().IsZero() {
		return r.reconcileDelete(ctx, obj)
	}
	return r.reconcileNormal(ctx, obj, &base)
}

// PendingCreate returns the pending-create record of an object whose create may not have been recorded, or nil.
func PendingCreate(obj billingv1.StripeObject) *billingv1.PendingCreate {
	v, ok := obj.GetAnnotations()[billingv1.AnnotationPendingCreate]
	if !ok {
		return nil
	}
	p := &billingv1.PendingCreate{}
	if err := json.Unmarshal([]byte(v), p); err != nil || p.IdempotencyKey == "" {
		// Not the operator's record: a create with a new key is safe only without one, so treat it as interrupted
		// with an unknown key (recovery lists Stripe, then a new key is used).
		return &billingv1.PendingCreate{Generation: -1}
	}
	if p.IdempotencyKey == obj.GetStripeStatus().CreateKey {
		return nil
	}
	return p
}

// recordTransition emits an Event when Ready changes status or reason, except an object's first Ready: a new object
// that becomes Ready on its first pass says so in its condition, and an Event for it would add one API write per
// object to every bulk import (a fifth of what the import writes). A Ready after anything else (a failure, a wait
// that was said, a deletion in Stripe) is recorded.
func (r *Reconciler[T]) recordTransition(obj T, before readyState) {
	after := readyOf(obj)
	if after == before || r.Recorder == nil || after.status == "" {
		return
	}
	if after.status == metav1.ConditionTrue && (before.status == "" || before.reason == billingv1.ReasonCreating) {
		return
	}
	typ := corev1.EventTypeNormal
	if isStalled(obj) {
		typ = corev1.EventTypeWarning
	}
	msg := ""
	for _, c := range obj.GetStripeStatus().Conditions {
		if c.Type == billingv1.ConditionReady {
			msg = c.Message
		}
	}
	r.Recorder.Eventf(obj, nil, typ, after.reason, "Reconcile", "%s", msg)
}

// resyncInterval is how often obj is re-read from Stripe: its annotation (at least a minute), else the option,
// else 10 hours.
func (r *Reconciler[T]) resyncInterval(obj T) time.Duration {
	if v, ok := obj.GetAnnotations()[billingv1.AnnotationResyncInterval]; ok {
		if parsed, err := time.ParseDuration(v); err == nil && parsed >= time.Minute {
			return parsed
		}
	}
	return r.operatorInterval()
}

// operatorInterval is the operator's resync interval: the option, else 10 hours.
func (r *Reconciler[T]) operatorInterval() time.Duration {
	if r.Options.ResyncInterval > 0 {
		return r.Options.ResyncInterval
	}
	return 10 * time.Hour
}

// resyncAt is when obj's periodic resync is due: its last sync plus the interval, jittered by ±10% by its UID, so
// that objects created together do not resync together, and every pass and every replica agree on the time.
func (r *Reconciler[T]) resyncAt(obj T) time.Time {
	h := fnv.New32a()
	_, _ = h.Write([]byte(obj.GetUID()))
	jitter := 0.9 + 0.2*float64(h.Sum32())/math.MaxUint32
	return obj.GetStripeStatus().LastSyncedAt.Add(time.Duration(float64(r.resyncInterval(obj)) * jitter))
}

// settled reports whether obj is Ready for this generation with nothing pending: no create to confirm, no
// reconcile or sync requested since its last sync. Only its periodic resync can make it need a Stripe call.
func (r *Reconciler[T]) settled(obj T) bool {
	st := obj.GetStripeStatus()
	requested := obj.GetAnnotations()[billingv1.AnnotationReconcileRequestedAt]
	return readyOf(obj).status == metav1.ConditionTrue && st.ObservedGeneration == obj.GetGeneration() &&
		PendingCreate(obj) == nil && st.LastSyncedAt != nil && requested == st.LastHandledReconcileAt &&
		st.SyncRequest == st.LastHandledSyncRequest
}

// inSync reports whether obj needs no Stripe call now: settled, and its resync not due yet.
func (r *Reconciler[T]) inSync(obj T) bool {
	return r.settled(obj) && r.now().Before(r.resyncAt(obj))
}

// resyncDue reports whether an object of the kind, as the cache holds it, is settled and due for its periodic
// resync (see resyncSweep).
func (r *Reconciler[T]) resyncDue(o client.Object) bool {
	obj, ok := o.(T)
	return ok && r.settled(obj) && !r.now().Before(r.resyncAt(obj))
}

// sweepEvery is how often the kind's cache is swept for due resyncs: the option, else a twentieth of the
// operator's interval, between a second and 30 seconds (a resync comes at most that late).
func (r *Reconciler[T]) sweepEvery() time.Duration {
	if r.Options.ResyncSweep > 0 {
		return r.Options.ResyncSweep
	}
	return min(max(r.operatorInterval()/20, time.Second), 30*time.Second)
}

func (r *Reconciler[T]) stamp(obj T) map[string]string {
	return map[string]string{
		billingv1.MetadataUID: string(obj.GetUID()), billingv1.MetadataNamespace: obj.GetNamespace(),
		billingv1.MetadataName: obj.GetName(), billingv1.MetadataKind: r.External.Kind(),
		billingv1.MetadataCluster: r.Options.ClusterName,
	}
}

// dependencyGrace is how long a new object waits silently for referenced objects that are being created: no status
// is written for a wait that ends by itself (the referenced object getting its ID re-queues this one).
const dependencyGrace = 30 * time.Second

// dependencyPoll is how often a wait is looked at again from the cache (no Stripe call, and no write while nothing
// changed), for what no watch reports: another Price releasing a lookup key, the grace period running out. A
// Stalled wait is looked at every stalledPoll; the watches on the referenced kinds bring it back sooner.
const (
	dependencyPoll = 5 * time.Second
	stalledPoll    = time.Minute
)

// waitForDependencies reports whether obj must wait for the objects it references, and sets its status when the
// wait is worth saying: a reference to an object that does not exist at once; a wait for an object being created
// only after dependencyGrace. Either turns Stalled (ReferenceNotFound) once it has lasted the reference grace
// period, so that GitOps tools report the cause instead of running out their timeout; it recovers by itself when
// the referenced object appears and gets its Stripe ID.
func (r *Reconciler[T]) waitForDependencies(ctx context.Context, obj T) (bool, ctrl.Result, error) {
	ready, msg, err := r.External.Dependencies(ctx, obj)
	var missing *missingRefError
	switch {
	case errors.As(err, &missing):
		msg = missing.Error() // said at once
	case err != nil || ready:
		return false, ctrl.Result{}, err
	default:
		st := obj.GetStripeStatus()
		if waited := r.now().Sub(obj.GetCreationTimestamp().Time); st.ID == "" && len(st.Conditions) == 0 &&
			waited < dependencyGrace {
			return true, ctrl.Result{RequeueAfter: min(dependencyGrace-waited, dependencyPoll)}, nil
		}
	}
	grace := r.Options.ReferenceGrace
	if grace <= 0 {
		grace = DefaultReferenceGrace
	}
	waited := r.now().Sub(waitingSince(obj, r.now()))
	if waited >= grace {
		setStalled(obj, billingv1.ReasonReferenceNotFound, fmt.Sprintf("%s (for more than %s)", msg, grace))
		return true, ctrl.Result{RequeueAfter: stalledPoll}, nil
	}
	setWaiting(obj, msg)
	return true, ctrl.Result{RequeueAfter: min(grace-waited, dependencyPoll)}, nil
}

func (r *Reconciler[T]) reconcileNormal(ctx context.Context, obj T, base *T) (ctrl.Result, error) {
	if r.inSync(obj) {
		stale, err := r.External.Stale(ctx, obj)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !stale {
			return ctrl.Result{}, nil // its resync comes from the sweep (resyncSweep)
		}
	}
	if wait, res, err := r.waitForDependencies(ctx, obj); wait || err != nil {
		return res, err
	}
	creds, err := r.Credentials.For(ctx, obj.GetNamespace())
	if err != nil {
		return r.handle(obj, nil, err)
	}
	if r.observing(obj) {
		return r.observeOnly(ctx, obj, base, creds)
	}
	prio := stripe.PriorityHigh
	if st := obj.GetStripeStatus(); st.ObservedGeneration == obj.GetGeneration() && st.ID != "" &&
		readyOf(obj).status == metav1.ConditionTrue {
		prio = stripe.PriorityLow // a periodic resync of an object in sync
	}
	sc := creds.Client
	st := obj.GetStripeStatus()
	pending := PendingCreate(obj)

	adopting := false
	if st.ID == "" && pending == nil {
		id, err := r.External.AdoptID(ctx, sc, obj)
		if err != nil {
			return r.handle(obj, creds, err)
		}
		if id != "" {
			// The deletion policy applies to an adopted object too: the finalizer first.
			if err := r.addFinalizer(ctx, obj, base, nil); err != nil {
				return r.conflictOr(err)
			}
		}
		st = obj.GetStripeStatus()
		st.ID, adopting = id, id != ""
	}
	if st.ID != "" && pending == nil {
		// An object observed before (managementPolicy Observe) has its ID but not the finalizer: the deletion
		// policy applies from now on.
		if err := r.addFinalizer(ctx, obj, base, nil); err != nil {
			return r.conflictOr(err)
		}
		if done, res, err := r.observe(ctx, obj, base, creds, prio, adopting); done || err != nil {
			return res, err
		}
	}
	if pending != nil && st.ID != "" {
		return r.create(ctx, obj, base, creds, st.ID, pending) // a replacement that may have reached Stripe
	}
	if st.ID == "" || pending != nil {
		return r.create(ctx, obj, base, creds, "", pending)
	}
	return r.synced(obj), nil
}

// observe reads the Stripe object named by status.id and brings it in line with the spec: done reports that the
// pass ends here (a missing object, a replacement, an error); otherwise status.id may have been cleared for a
// re-creation the recreate annotation asks for.
func (r *Reconciler[T]) observe(ctx context.Context, obj T, base *T, creds *credentials.Resolved, prio stripe.Priority,
	adopting bool) (bool, ctrl.Result, error) {
	st, sc := obj.GetStripeStatus(), creds.Client
	obs, err := r.External.Observe(ctx, sc, obj, st.ID, prio, r.stamp(obj))
	if err != nil {
		res, err := r.handle(obj, creds, err)
		return true, res, err
	}
	switch {
	case !obs.Exists && adopting:
		setStalled(obj, billingv1.ReasonReferenceNotFound, fmt.Sprintf("spec.adopt names %s, which does not "+
			"exist in Stripe", st.ID))
		st.ID = ""
		return true, ctrl.Result{}, nil
	case !obs.Exists:
		if obj.GetAnnotations()[billingv1.AnnotationRecreate] != st.ID {
			st.LastHandledSyncRequest = st.SyncRequest
			setStalled(obj, billingv1.ReasonDeletedInStripe, fmt.Sprintf("%s %s was deleted in Stripe; it is "+
				"not re-created unless annotated %s=%s", r.External.Kind(), st.ID, billingv1.AnnotationRecreate,
				st.ID))
			return true, ctrl.Result{}, nil
		}
		st.ID = "" // re-create, as the annotation asks
		return false, ctrl.Result{}, nil
	case obs.Replace:
		res, err := r.create(ctx, obj, base, creds, st.ID, nil)
		return true, res, err
	case !obs.UpToDate:
		setReconciling(obj, billingv1.ReasonUpdating, "Updating the Stripe object")
		if err := r.External.Update(ctx, sc, obj, r.stamp(obj), obs); err != nil {
			res, err := r.handle(obj, creds, err)
			return true, res, err
		}
	}
	err = r.handover(ctx, *base, obj)
	if errors.Is(err, errHandoverDropped) {
		if st.SyncRequest != st.LastHandledSyncRequest {
			// The read was asked for (events that could not be ordered) and events kept coming: read again
			// shortly, until a read lands.
			return true, ctrl.Result{RequeueAfter: time.Second}, nil
		}
		err = nil // events brought something at least as new
	}
	return false, ctrl.Result{}, err
}

// handover passes the fields read from Stripe that the event worker owns (when events flow) to the worker.
func (r *Reconciler[T]) handover(ctx context.Context, base, obj T) error {
	if r.Handover == nil {
		return nil
	}
	return r.Handover(ctx, base, obj)
}

func (r *Reconciler[T]) synced(obj T) ctrl.Result {
	st := obj.GetStripeStatus()
	now := metav1.NewTime(r.now())
	st.LastSyncedAt = &now
	st.LastHandledReconcileAt = obj.GetAnnotations()[billingv1.AnnotationReconcileRequestedAt]
	st.LastHandledSyncRequest = st.SyncRequest
	if r.observing(obj) {
		setReadyReason(obj, billingv1.ReasonObserved, fmt.Sprintf("%s %s was observed in Stripe (managementPolicy "+
			"Observe: nothing is written)", r.External.Kind(), st.ID))
	} else {
		st.Drift = nil
		meta.RemoveStatusCondition(&st.Conditions, billingv1.ConditionInSync)
		setReady(obj, fmt.Sprintf("%s %s is in sync with Stripe", r.External.Kind(), st.ID))
	}
	// The periodic resync comes from the sweep, at low priority: after every change a person made.
	return ctrl.Result{}
}

// observeOnly reads the Stripe object named by status.id or spec.adopt and reports how it differs from the spec in
// status.drift and the InSync condition, without writing anything to Stripe. Switching the object to Manage
// applies exactly what drift lists (and the operator's metadata stamp).
func (r *Reconciler[T]) observeOnly(ctx context.Context, obj T, base *T, creds *credentials.Resolved) (ctrl.Result,
	error) {
	st := obj.GetStripeStatus()
	id, adopting := st.ID, false
	if id == "" {
		aid, err := r.External.AdoptID(ctx, creds.Client, obj)
		if err != nil {
			return r.handle(obj, creds, err)
		}
		id, adopting = aid, true
	}
	if id == "" {
		setStalled(obj, billingv1.ReasonNothingToObserve, "managementPolicy is Observe (or the operator runs with "+
			"--observe-only) and no Stripe object is named: set spec.adopt to observe an existing one, or switch to "+
			"Manage to create one")
		return ctrl.Result{}, nil
	}
	prio := stripe.PriorityHigh
	if readyOf(obj).status == metav1.ConditionTrue && st.ObservedGeneration == obj.GetGeneration() {
		prio = stripe.PriorityLow
	}
	obs, err := r.External.Observe(ctx, creds.Client, obj, id, prio, r.stamp(obj))
	if err != nil {
		return r.handle(obj, creds, err)
	}
	if !obs.Exists {
		st.LastHandledSyncRequest = st.SyncRequest
		if adopting {
			setStalled(obj, billingv1.ReasonReferenceNotFound, fmt.Sprintf("spec.adopt names %s, which does not "+
				"exist in Stripe", id))
		} else {
			setStalled(obj, billingv1.ReasonDeletedInStripe, fmt.Sprintf("%s %s was deleted in Stripe", r.External.Kind(),
				id))
		}
		return ctrl.Result{}, nil
	}
	st.ID = id
	setDrift(obj, obs.Drift)
	if err := r.handover(ctx, *base, obj); err != nil && !errors.Is(err, errHandoverDropped) {
		return ctrl.Result{}, err
	}
	return r.synced(obj), nil
}

// addFinalizer adds the operator's finalizer and, when p is given, the pending-create record, in one
// resourceVersion-checked patch; base becomes the object as stored.
func (r *Reconciler[T]) addFinalizer(ctx context.Context, obj T, base *T, p *billingv1.PendingCreate) error {
	if p == nil && controllerutil.ContainsFinalizer(obj, billingv1.Finalizer) {
		return nil
	}
	var raw []byte
	if p != nil {
		var err error
		if raw, err = json.Marshal(p); err != nil {
			return fmt.Errorf("encoding the pending create: %w", err)
		}
	}
	read := obj.DeepCopyObject().(T)
	for attempt := 0; ; attempt++ {
		before := obj.DeepCopyObject().(T)
		controllerutil.AddFinalizer(obj, billingv1.Finalizer)
		if p != nil {
			ann := obj.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[billingv1.AnnotationPendingCreate] = string(raw)
			obj.SetAnnotations(ann)
		}
		// A patch of what changed, checked against the resourceVersion read (the cache holds no managedFields and
		// no last-applied annotation, so a whole-object update would drop kubectl's). It answers with the stored
		// object: its status (the event worker's writes included) is the truth from here on.
		err := r.Client.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			*base = obj.DeepCopyObject().(T)
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == 2 || r.APIReader == nil {
			return err
		}
		// A conflict with a write that changed only status (the event worker) or unrelated metadata is retried on
		// the stored object at once; anything that changes what this pass decided (the spec, a pending create, the
		// ID, a deletion) ends the pass, before any Stripe call.
		live := r.New()
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), live); gerr != nil {
			return err
		}
		if live.GetGeneration() != read.GetGeneration() || !live.GetDeletionTimestamp().IsZero() ||
			live.GetStripeStatus().ID != read.GetStripeStatus().ID || !samePending(live, read) {
			return err
		}
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(live).Elem())
	}
}

// samePending reports whether two views of an object hold the same pending create (the cache drops a recorded
// record, see StripForCache, so the annotations themselves may differ).
func samePending(a, b billingv1.StripeObject) bool {
	pa, pb := PendingCreate(a), PendingCreate(b)
	if pa == nil || pb == nil {
		return pa == pb
	}
	return pa.IdempotencyKey == pb.IdempotencyKey && pa.Generation == pb.Generation
}

// conflictOr turns a conflict (another view of the object won; nothing was sent to Stripe) into a prompt retry.
func (r *Reconciler[T]) conflictOr(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// create is the crash-safe create (docs/architecture.md, "Crash-safe create"). replacing is the ID a successor
// replaces, or ""; pending is the record of an earlier attempt whose result was not recorded, or nil.
//
//  1. A pending-create record (idempotency key, generation, start time) is written to the object's annotations,
//     with the finalizer, in one resourceVersion-checked patch before the POST.
//  2. The POST carries the deterministic key. Its result is recorded in status (id, and createKey = the key, which
//     settles the record).
//  3. A record left by an earlier attempt means the result may not have been recorded: the objects created since
//     the attempt are listed (a strongly consistent read) and one carrying the UID stamp is taken; otherwise the
//     same key is replayed while it is younger than the replay window, or a new key is used after it.
func (r *Reconciler[T]) create(ctx context.Context, obj T, base *T, creds *credentials.Resolved,
	replacing string, pending *billingv1.PendingCreate) (ctrl.Result, error) {
	sc := creds.Client
	log := ctrl.LoggerFrom(ctx)
	now := r.now()
	if p := pending; p != nil {
		// An attempt Stripe refused with a 429 rate_limit was not run (the limit is checked before anything else,
		// and no idempotent result is kept): nothing to look for. After a restart this is not known, and Stripe is
		// listed.
		if _, refused := r.refused.LoadAndDelete(p.IdempotencyKey); !refused {
			id, err := r.External.Find(ctx, sc, obj, p.StartedAt.Add(-time.Minute))
			if err != nil {
				return r.handle(obj, creds, err)
			}
			if id != "" {
				log.Info("Recovered a Stripe object created by an earlier attempt", "stripeID", id,
					"idempotencyKey", p.IdempotencyKey)
				createsRecovered.WithLabelValues(r.External.Kind()).Inc()
				return r.created(ctx, obj, *base, creds, id, replacing, p.IdempotencyKey, false)
			}
		}
		window := r.Options.ReplayWindow
		if window == 0 {
			window = 23 * time.Hour
		}
		if p.Generation != obj.GetGeneration() || now.Sub(p.StartedAt.Time) >= window {
			pending = nil
		}
	}
	if pending == nil {
		op := stripe.OpCreate
		if replacing != "" {
			op = "replace-" + replacing
		}
		// The start time makes each pending record's key its own: a re-creation after DeletedInStripe, or a new
		// attempt after the replay window, must not replay an older create.
		key := stripe.IdempotencyKey(string(obj.GetUID()), op, obj.GetGeneration(),
			now.UTC().Format(time.RFC3339Nano))
		pending = &billingv1.PendingCreate{IdempotencyKey: key, Generation: obj.GetGeneration(),
			StartedAt: metav1.NewTime(now)}
		// The record must be stored before the POST: a conflict means another view of the object won, so stop
		// (nothing was sent).
		if err := r.addFinalizer(ctx, obj, base, pending); err != nil {
			return r.conflictOr(fmt.Errorf("recording the pending create: %w", err))
		}
	}
	setReconciling(obj, billingv1.ReasonCreating, "Creating the Stripe object")
	id, err := r.External.Create(ctx, sc, obj, pending.IdempotencyKey, r.stamp(obj))
	if err != nil {
		ce := stripe.Classify(err)
		if ce.Class == stripe.ClassRateLimited && ce.IdempotencyKey == pending.IdempotencyKey {
			// The create's own POST was refused (not a read before it, nor a call after it that found the object
			// created).
			r.refused.Store(pending.IdempotencyKey, struct{}{})
		}
		if ce.Class == stripe.ClassIdempotencyMismatch {
			// The key was used with other parameters: recover by listing on the next pass, then use a new key.
			log.Info("Idempotency key reused with other parameters; recovering", "idempotencyKey",
				pending.IdempotencyKey)
			pending.Generation = -1
			if err := r.addFinalizer(ctx, obj, base, pending); err != nil {
				return r.conflictOr(err)
			}
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return r.handle(obj, creds, err)
	}
	return r.created(ctx, obj, *base, creds, id, replacing, pending.IdempotencyKey, true)
}

// created records the new object. fresh says Create made it in this pass from the current spec, so status is
// already filled from Stripe's answer; an object recovered from an earlier attempt is read back and updated. base is
// the object as stored.
func (r *Reconciler[T]) created(ctx context.Context, obj, base T, creds *credentials.Resolved, id, replacing,
	key string, fresh bool) (ctrl.Result, error) {
	st := obj.GetStripeStatus()
	if replacing != "" {
		// Until the replacement is finished the pending record stays, so a crash or an error here comes back to
		// it: the successor is found by its UID stamp and Replaced runs again.
		if err := r.External.Replaced(ctx, creds.Client, obj, replacing, id); err != nil {
			return r.handle(obj, creds, err)
		}
	}
	st.ID, st.CreateKey = id, key
	if !fresh {
		obs, err := r.External.Observe(ctx, creds.Client, obj, id, stripe.PriorityHigh, r.stamp(obj))
		if err != nil {
			return r.handle(obj, creds, err)
		}
		if obs.Exists && !obs.UpToDate && !obs.Replace {
			if err := r.External.Update(ctx, creds.Client, obj, r.stamp(obj), obs); err != nil {
				return r.handle(obj, creds, err)
			}
		}
	}
	if err := r.handover(ctx, base, obj); err != nil && !errors.Is(err, errHandoverDropped) {
		return ctrl.Result{}, err
	}
	return r.synced(obj), nil
}

func (r *Reconciler[T]) reconcileDelete(ctx context.Context, obj T) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, billingv1.Finalizer) {
		return ctrl.Result{}, nil
	}
	st := obj.GetStripeStatus()
	// An observed object writes nothing to Stripe, its deletion policy included.
	if p := PendingCreate(obj); !r.observing(obj) && (p != nil || st.ID != "" && !isStalledDeleted(obj)) {
		creds, err := r.Credentials.For(ctx, obj.GetNamespace())
		if err != nil {
			return r.handle(obj, nil, err)
		}
		if p != nil && st.ID == "" {
			// A create that may have reached Stripe: find it, so the deletion policy applies to it too (one Stripe
			// refused for the rate limit did not).
			if _, refused := r.refused.Load(p.IdempotencyKey); !refused {
				id, err := r.External.Find(ctx, creds.Client, obj, p.StartedAt.Add(-time.Minute))
				if err != nil {
					return r.handle(obj, creds, err)
				}
				st.ID = id
			}
		}
		if st.ID != "" {
			setReconciling(obj, billingv1.ReasonDeleting, "Carrying out the deletion policy in Stripe")
			if err := r.External.Delete(ctx, creds.Client, obj); err != nil && !stripe.IsNotFound(err) {
				return r.handle(obj, creds, err)
			}
		}
	}
	before := obj.DeepCopyObject().(T)
	controllerutil.RemoveFinalizer(obj, billingv1.Finalizer)
	if err := r.Client.Patch(ctx, obj, client.MergeFromWithOptions(before,
		client.MergeFromWithOptimisticLock{})); err != nil {
		return r.conflictOr(err)
	}
	if p := PendingCreate(obj); p != nil {
		r.refused.Delete(p.IdempotencyKey)
	}
	return ctrl.Result{}, nil
}

func isStalledDeleted(obj billingv1.StripeObject) bool {
	return isStalled(obj) && readyOf(obj).reason == billingv1.ReasonDeletedInStripe
}

// handle turns an error into conditions and a requeue, per the error table (errorTable in errors.go).
func (r *Reconciler[T]) handle(obj T, creds *credentials.Resolved, err error) (ctrl.Result, error) {
	if ce, ok := credentials.AsError(err); ok {
		setStalled(obj, ce.Reason, ce.Message)
		return ctrl.Result{}, nil
	}
	var stall *stallError
	if errors.As(err, &stall) {
		setStalled(obj, stall.reason, stall.msg)
		return ctrl.Result{}, nil
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		setReconciling(obj, billingv1.ReasonStripeUnavailable, err.Error())
		return ctrl.Result{}, err
	}
	msg := se.Message
	if se.Param != "" {
		msg += " (param " + se.Param + ")"
	}
	if se.RequestID != "" {
		msg += " [" + se.RequestID + "]"
	}
	row := errorRow(se.Class)
	if se.Class == stripe.ClassAuthentication {
		if creds != nil {
			r.Credentials.Refused(creds)
		}
		msg = "Stripe refused the API key (401); fix the credentials Secret: " + msg
	}
	if row.class == stripe.ClassRateLimited {
		msg = "Stripe is rate limiting; the shared budget is backing off"
	}
	if row.stalled {
		setStalled(obj, row.reason, msg)
		return ctrl.Result{}, nil
	}
	setReconciling(obj, row.reason, msg)
	if row.requeueAfter > 0 {
		return ctrl.Result{RequeueAfter: row.requeueAfter}, nil
	}
	return ctrl.Result{}, se
}
