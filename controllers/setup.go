package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/fairness"
	evrecorder "github.com/stripe-operator/stripe-operator/internal/recorder"
)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Setup registers the controllers of every registered billing kind, the StripeEvent worker and the credentials
// controller with the manager.
func Setup(mgr ctrl.Manager, creds *credentials.Resolver, opts Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	ids := newStripeIDs()
	for _, k := range kinds {
		for _, ref := range k.refs {
			if err := idx.IndexField(ctx, k.newObject(), ref.index, ref.extract); err != nil {
				return fmt.Errorf("indexing %ss by %s: %w", k.kind, ref.index, err)
			}
		}
		if err := ids.watch(ctx, mgr.GetCache(), k); err != nil {
			return fmt.Errorf("mapping %ss by Stripe ID: %w", k.kind, err)
		}
	}
	if err := idx.IndexField(ctx, &billingv1.StripeEvent{}, indexEventRoute, func(o client.Object) []string {
		if id := routeID(o.(*billingv1.StripeEvent)); id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing StripeEvents: %w", err)
	}

	c := mgr.GetClient()
	workers := opts.MaxConcurrentReconciles
	if workers <= 0 {
		workers = 4
	}
	copts := controller.Options{MaxConcurrentReconciles: workers}
	// The operator's own recorder: client-go's keeps every Event for six minutes (see internal/recorder).
	recorder := evrecorder.New(c, mgr.GetScheme(), "stripe-operator", evrecorder.Options{})
	if err := mgr.Add(recorder); err != nil {
		return err
	}
	secrets := secretMapper{client: c, creds: creds}
	retention := opts.EventRetention
	if retention <= 0 {
		retention = 96 * time.Hour
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	backoff := opts.EventRouteBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	// The ledger tells the worker which StripeEvents it recorded, so that it deletes them.
	compacted := make(chan event.TypedGenericEvent[*billingv1.StripeEvent], 4096)
	ledger := newEventLedger(c, mgr.GetAPIReader(), now, retention, compacted)
	worker := &eventWorker{client: c, ids: ids, recorder: recorder, creds: creds, retention: retention, backoff: backoff,
		now: now, webhooks: opts.Webhooks, apiReader: mgr.GetAPIReader(), ledger: ledger,
		compactionDelay: max(opts.EventCompactionDelay, 0), observeOnly: opts.ObserveOnly,
		entitlementReads: opts.EntitlementReads}
	deps := loopDeps{client: c, apiReader: mgr.GetAPIReader(), recorder: recorder, creds: creds, opts: opts}
	if opts.Webhooks {
		deps.handover = worker.handover
	}

	// The kinds' queues let namespaces take turns within a priority (the worker's events all live in one namespace).
	kopts := copts
	labels := fairness.NewLabels(20)
	kopts.NewQueue = func(name string,
		rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		return fairness.NewQueue(name, priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
			o.RateLimiter = rl
			o.Log = mgr.GetLogger().WithValues("controller", name)
		}), opts.NamespaceWeights, labels)
	}
	for _, k := range kinds {
		b := ctrl.NewControllerManagedBy(mgr).Named(strings.ToLower(k.kind)).WithOptions(kopts).
			For(k.newObject(), builder.WithPredicates(changePredicate()))
		for _, ref := range k.refs {
			target, _ := kindByName(ref.kind)
			b = b.Watches(target.newObject(), referrers(c, k.newList, ref.index), builder.WithPredicates(idAssigned()))
		}
		b = b.Watches(&corev1.Secret{}, secrets.handler(k.newList))
		rec := k.reconciler(deps)
		if s, ok := rec.(resyncScheduler); ok {
			b = b.WatchesRawSource(resyncSweep(mgr.GetCache(), k.newObject(), s))
		}
		if err := b.Complete(rec); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", k.kind, err)
		}
	}

	// The spec is immutable, so only creations pass: the worker's own status writes must not re-queue an event
	// (its routing retries are paced by RequeueAfter). A billing object getting its Stripe ID re-queues the events
	// waiting for it.
	b := ctrl.NewControllerManagedBy(mgr).Named("stripeevent").WithOptions(copts).
		For(&billingv1.StripeEvent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(compacted, &handler.TypedEnqueueRequestForObject[*billingv1.StripeEvent]{}))
	for _, k := range kinds {
		b = b.Watches(k.newObject(), eventsRoutedBy(c, ids, k.kind), builder.WithPredicates(idAssigned()))
	}
	if err := b.Complete(worker); err != nil {
		return fmt.Errorf("setting up the StripeEvent worker: %w", err)
	}
	if err := mgr.Add(ledger); err != nil {
		return fmt.Errorf("adding the event ledger: %w", err)
	}
	if err := mgr.Add(stateSource{reader: mgr.GetCache(), now: now}); err != nil {
		return fmt.Errorf("adding the state metrics: %w", err)
	}
	initRequestMetrics()
	return (&credentialsReconciler{client: c, creds: creds}).setup(mgr)
}

// changePredicate passes what should make the loop act: creation, a spec change (generation), a change of a user's
// annotation (reconcile-requested-at, recreate, resync-interval), a new sync request from the event worker, and
// deletion. Other status writes, and the operator's own pending-create annotation, do not trigger it.
func changePredicate() predicate.Predicate {
	return predicate.Or[client.Object](
		predicate.GenerationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return !e.ObjectNew.GetDeletionTimestamp().IsZero() || userAnnotationsChanged(e.ObjectOld, e.ObjectNew) ||
				syncRequested(e.ObjectOld, e.ObjectNew)
		}},
	)
}

// userAnnotationsChanged compares the annotations other than the operator's own pending-create record.
func userAnnotationsChanged(oldObj, newObj client.Object) bool {
	o, n := maps.Clone(oldObj.GetAnnotations()), maps.Clone(newObj.GetAnnotations())
	delete(o, billingv1.AnnotationPendingCreate)
	delete(n, billingv1.AnnotationPendingCreate)
	return !maps.Equal(o, n)
}

// syncRequested passes the status write by which the event worker asks for a read from Stripe (status.syncRequest,
// a field only the worker writes).
func syncRequested(oldObj, newObj client.Object) bool {
	o, okOld := oldObj.(billingv1.StripeObject)
	n, okNew := newObj.(billingv1.StripeObject)
	return okOld && okNew && n.GetStripeStatus().SyncRequest != o.GetStripeStatus().SyncRequest
}

// idAssigned passes a referenced object's changes of Stripe ID (a new object, or a Price rolled to a successor).
func idAssigned() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(billingv1.StripeObject)
			n, okNew := e.ObjectNew.(billingv1.StripeObject)
			return okOld && okNew && o.GetStripeStatus().ID != n.GetStripeStatus().ID
		},
		CreateFunc:  func(event.CreateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// referrers maps an object to the objects of list's kind in its namespace whose index field names it.
func referrers(c client.Client, newList func() client.ObjectList, field string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		l := newList()
		if err := c.List(ctx, l, client.InNamespace(o.GetNamespace()),
			client.MatchingFields{field: o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing the objects that reference a changed object", "field", field)
			return nil
		}
		return requestsFor(l)
	})
}

func requestsFor(l client.ObjectList) []reconcile.Request {
	var out []reconcile.Request
	if err := forEachItem(l, func(o client.Object) {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}); err != nil {
		return nil
	}
	return out
}

// secretMapper re-queues the billing objects a credentials Secret serves when it changes: those in its namespace,
// or every object for the operator-wide Secret.
type secretMapper struct {
	client client.Client
	creds  *credentials.Resolver
}

func (m secretMapper) handler(newList func() client.ObjectList) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		key := types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
		var opts []client.ListOption
		switch {
		case key == m.creds.Default:
		case o.GetName() == m.creds.NamespaceSecretName:
			opts = append(opts, client.InNamespace(o.GetNamespace()))
		default:
			return nil
		}
		l := newList()
		if err := m.client.List(ctx, l, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing the objects a credentials Secret serves")
			return nil
		}
		return requestsFor(l)
	})
}
