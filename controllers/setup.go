package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Field indexes that map a changed object to the objects that reference it.
const (
	indexProductRef  = "spec.productRef.name"
	indexCustomerRef = "spec.customerRef.name"
	indexPriceRefs   = "spec.items.priceRef.name"
)

// Setup registers the controllers of every billing kind with the manager.
func Setup(mgr ctrl.Manager, creds *credentials.Resolver, opts Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &billingv1.Price{}, indexProductRef, func(o client.Object) []string {
		if ref := o.(*billingv1.Price).Spec.ProductRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing Prices: %w", err)
	}
	if err := idx.IndexField(ctx, &billingv1.Subscription{}, indexCustomerRef, func(o client.Object) []string {
		if ref := o.(*billingv1.Subscription).Spec.CustomerRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing Subscriptions: %w", err)
	}
	if err := idx.IndexField(ctx, &billingv1.Subscription{}, indexPriceRefs, func(o client.Object) []string {
		var names []string
		for _, it := range o.(*billingv1.Subscription).Spec.Items {
			if it.PriceRef != nil {
				names = append(names, it.PriceRef.Name)
			}
		}
		return names
	}); err != nil {
		return fmt.Errorf("indexing Subscriptions: %w", err)
	}

	for _, o := range []client.Object{&billingv1.Customer{}, &billingv1.Product{}, &billingv1.Price{},
		&billingv1.Subscription{}} {
		if err := idx.IndexField(ctx, o, indexStripeID, func(o client.Object) []string {
			if id := o.(billingv1.StripeObject).GetStripeStatus().ID; id != "" {
				return []string{id}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("indexing by Stripe ID: %w", err)
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
	recorder := mgr.GetEventRecorder("stripe-operator")
	secrets := secretMapper{client: c, creds: creds}

	cus := &Reconciler[*billingv1.Customer]{Client: c, Recorder: recorder, Credentials: creds,
		External: customerExternal{}, Options: opts, New: func() *billingv1.Customer { return &billingv1.Customer{} }}
	if err := ctrl.NewControllerManagedBy(mgr).Named("customer").WithOptions(copts).
		For(&billingv1.Customer{}, builder.WithPredicates(changePredicate())).
		Watches(&corev1.Secret{}, secrets.handler(&billingv1.CustomerList{})).
		Complete(cus); err != nil {
		return fmt.Errorf("setting up the Customer controller: %w", err)
	}

	prod := &Reconciler[*billingv1.Product]{Client: c, Recorder: recorder, Credentials: creds,
		External: productExternal{}, Options: opts, New: func() *billingv1.Product { return &billingv1.Product{} }}
	if err := ctrl.NewControllerManagedBy(mgr).Named("product").WithOptions(copts).
		For(&billingv1.Product{}, builder.WithPredicates(changePredicate())).
		Watches(&corev1.Secret{}, secrets.handler(&billingv1.ProductList{})).
		Complete(prod); err != nil {
		return fmt.Errorf("setting up the Product controller: %w", err)
	}

	price := &Reconciler[*billingv1.Price]{Client: c, Recorder: recorder, Credentials: creds,
		External: priceExternal{client: c}, Options: opts, New: func() *billingv1.Price { return &billingv1.Price{} }}
	if err := ctrl.NewControllerManagedBy(mgr).Named("price").WithOptions(copts).
		For(&billingv1.Price{}, builder.WithPredicates(changePredicate())).
		Watches(&billingv1.Product{}, referrers(c, &billingv1.PriceList{}, indexProductRef),
			builder.WithPredicates(idAssigned())).
		Watches(&corev1.Secret{}, secrets.handler(&billingv1.PriceList{})).
		Complete(price); err != nil {
		return fmt.Errorf("setting up the Price controller: %w", err)
	}

	sub := &Reconciler[*billingv1.Subscription]{Client: c, Recorder: recorder, Credentials: creds,
		External: subscriptionExternal{client: c}, Options: opts,
		New: func() *billingv1.Subscription { return &billingv1.Subscription{} }}
	if err := ctrl.NewControllerManagedBy(mgr).Named("subscription").WithOptions(copts).
		For(&billingv1.Subscription{}, builder.WithPredicates(changePredicate())).
		Watches(&billingv1.Customer{}, referrers(c, &billingv1.SubscriptionList{}, indexCustomerRef),
			builder.WithPredicates(idAssigned())).
		Watches(&billingv1.Price{}, referrers(c, &billingv1.SubscriptionList{}, indexPriceRefs),
			builder.WithPredicates(idAssigned())).
		Watches(&corev1.Secret{}, secrets.handler(&billingv1.SubscriptionList{})).
		Complete(sub); err != nil {
		return fmt.Errorf("setting up the Subscription controller: %w", err)
	}
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
	worker := &eventWorker{client: c, recorder: recorder, creds: creds, retention: retention, backoff: backoff,
		now: now}
	// The spec is immutable, so only creations pass: the worker's own status writes must not re-queue an event
	// (its routing retries are paced by RequeueAfter). A billing object getting its Stripe ID re-queues the events
	// waiting for it.
	b := ctrl.NewControllerManagedBy(mgr).Named("stripeevent").WithOptions(copts).
		For(&billingv1.StripeEvent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	for _, o := range []client.Object{&billingv1.Customer{}, &billingv1.Product{}, &billingv1.Price{},
		&billingv1.Subscription{}} {
		b = b.Watches(o, eventsRoutedBy(c), builder.WithPredicates(idAssigned()))
	}
	if err := b.Complete(worker); err != nil {
		return fmt.Errorf("setting up the StripeEvent worker: %w", err)
	}
	if err := mgr.Add(stateSource{reader: mgr.GetCache(), now: now}); err != nil {
		return fmt.Errorf("adding the state metrics: %w", err)
	}
	initRequestMetrics()
	return (&credentialsReconciler{client: c, creds: creds}).setup(mgr)
}

// initRequestMetrics creates the zero series of the Stripe request metrics for every call the controllers and the
// event worker make, so that the alerts' rates see the first error.
func initRequestMetrics() {
	stripe.InitMetrics(resCustomer, stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpDelete,
		stripe.OpList)
	stripe.InitMetrics(resProduct, stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
	stripe.InitMetrics(resPrice, stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
	stripe.InitMetrics(resSubscription, stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpCancel,
		stripe.OpList)
	stripe.InitMetrics(resPaymentIntent, stripe.OpRetrieve)
	stripe.InitMetrics(resCharge, stripe.OpRetrieve)
	stripe.InitMetrics(resDispute, stripe.OpRetrieve)
}

// changePredicate passes what should make the loop act: creation, a spec change (generation), an annotation
// change (reconcile-requested-at, recreate, resync-interval), and deletion. Status writes do not trigger it.
func changePredicate() predicate.Predicate {
	return predicate.Or[client.Object](
		predicate.GenerationChangedPredicate{},
		predicate.AnnotationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return !e.ObjectNew.GetDeletionTimestamp().IsZero() || markedStale(e.ObjectOld, e.ObjectNew)
		}},
	)
}

// markedStale passes the status write by which the event worker asks for a re-read from Stripe (it clears
// status.lastSyncedAt). The reconcile is triggered by the informer's own event, so it sees that write.
func markedStale(oldObj, newObj client.Object) bool {
	o, okOld := oldObj.(billingv1.StripeObject)
	n, okNew := newObj.(billingv1.StripeObject)
	return okOld && okNew && o.GetStripeStatus().LastSyncedAt != nil && n.GetStripeStatus().LastSyncedAt == nil
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
func referrers(c client.Client, list client.ObjectList, field string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(o.GetNamespace()),
			client.MatchingFields{field: o.GetName()}); err != nil {
			return nil
		}
		return requestsFor(l)
	})
}

func requestsFor(l client.ObjectList) []reconcile.Request {
	var out []reconcile.Request
	_ = forEachItem(l, func(o client.Object) {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	})
	return out
}

// forEachItem calls fn on every item of a billing list.
func forEachItem(l client.ObjectList, fn func(client.Object)) error {
	switch l := l.(type) {
	case *billingv1.CustomerList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	case *billingv1.ProductList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	case *billingv1.PriceList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	case *billingv1.SubscriptionList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	default:
		return fmt.Errorf("not a billing list: %T", l)
	}
	return nil
}

// secretMapper re-queues the billing objects a credentials Secret serves when it changes: those in its namespace,
// or every object for the operator-wide Secret.
type secretMapper struct {
	client client.Client
	creds  *credentials.Resolver
}

func (m secretMapper) handler(list client.ObjectList) handler.EventHandler {
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
		l := list.DeepCopyObject().(client.ObjectList)
		if err := m.client.List(ctx, l, opts...); err != nil {
			return nil
		}
		return requestsFor(l)
	})
}
