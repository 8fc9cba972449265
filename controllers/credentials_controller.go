package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
)

// The operator may get, list, watch, update and patch only Secrets named stripe-credentials: that rule is in
// config/rbac/credentials_role.yaml, written by hand because an RBAC marker cannot carry resourceNames.

// credentialsReconciler keeps the in-use finalizer on a credentials Secret while billing objects that need it
// exist, so deleting a namespace (which deletes everything in it at once) cannot remove the key before the billing
// objects' deletion policies have been carried out in Stripe.
type credentialsReconciler struct {
	client client.Client
	creds  *credentials.Resolver
}

func (r *credentialsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	secret := &corev1.Secret{}
	if err := r.client.Get(ctx, req.NamespacedName, secret); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var opts []client.ListOption
	switch {
	case req.NamespacedName == r.creds.Default:
	case req.Name == r.creds.NamespaceSecretName:
		opts = append(opts, client.InNamespace(req.Namespace))
	default:
		return ctrl.Result{}, nil
	}
	inUse, err := r.inUse(ctx, opts...)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := secret.DeepCopy()
	has := controllerutil.ContainsFinalizer(secret, billingv1.CredentialsInUseFinalizer)
	switch {
	case inUse && !has && secret.DeletionTimestamp.IsZero():
		controllerutil.AddFinalizer(secret, billingv1.CredentialsInUseFinalizer)
	case !inUse && has:
		controllerutil.RemoveFinalizer(secret, billingv1.CredentialsInUseFinalizer)
	default:
		return ctrl.Result{}, nil
	}
	// A patch of the finalizers alone, checked against the resourceVersion read: the cache holds no last-applied
	// annotation, which a whole-object update would drop.
	err = r.client.Patch(ctx, secret, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if err != nil && !apierrors.IsNotFound(err) {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil // read from a cache that was behind
		}
		return ctrl.Result{}, fmt.Errorf("updating the finalizers of Secret %s: %w", req, err)
	}
	return ctrl.Result{}, nil
}

// inUse reports whether any billing object that still holds the operator's finalizer exists.
func (r *credentialsReconciler) inUse(ctx context.Context, opts ...client.ListOption) (bool, error) {
	for _, k := range kinds {
		l := k.newList()
		// Read-only use of the cached objects: no deep copy of every billing object on each check.
		if err := r.client.List(ctx, l, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
			return false, fmt.Errorf("listing %ss: %w", k.kind, err)
		}
		found := false
		if err := forEachItem(l, func(o client.Object) {
			found = found || controllerutil.ContainsFinalizer(o, billingv1.Finalizer)
		}); err != nil {
			return false, err
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// secretsFor maps a billing object whose finalizer came or went to the credentials Secrets that may serve it. An
// object that took the finalizer can only make a Secret in use: a Secret already holding the in-use finalizer is
// left alone, so a bulk apply wakes the controller about once per Secret, not once per object. An object that let
// the finalizer go may have been the last user: both Secrets are checked.
func (r *credentialsReconciler) secretsFor(ctx context.Context, o client.Object) []reconcile.Request {
	adding := controllerutil.ContainsFinalizer(o, billingv1.Finalizer) && o.GetDeletionTimestamp().IsZero()
	var out []reconcile.Request
	for _, key := range []types.NamespacedName{
		{Namespace: o.GetNamespace(), Name: r.creds.NamespaceSecretName}, r.creds.Default} {
		if adding {
			secret := &corev1.Secret{}
			err := r.client.Get(ctx, key, secret)
			if apierrors.IsNotFound(err) ||
				err == nil && controllerutil.ContainsFinalizer(secret, billingv1.CredentialsInUseFinalizer) {
				continue // no such Secret (its creation is watched), or in use already
			}
		}
		out = append(out, reconcile.Request{NamespacedName: key})
	}
	return out
}

// secretsHandler enqueues the Secrets secretsFor names. An update is mapped from the new object only (a mapping
// handler would map the old one too, which still lacked the finalizer).
func (r *credentialsReconciler) secretsHandler() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	enqueue := func(ctx context.Context, o client.Object, q queue) {
		for _, req := range r.secretsFor(ctx, o) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, e.Object, q) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) { enqueue(ctx, e.ObjectNew, q) },
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, e.Object, q) },
	}
}

// finalizerChanged passes what can change whether a Secret is in use: a billing object holding the operator's
// finalizer created or deleted, or the finalizer added or removed. Status writes and spec edits do not, so they do
// not make the controller list every billing object again.
func finalizerChanged() predicate.Predicate {
	holds := func(o client.Object) bool { return controllerutil.ContainsFinalizer(o, billingv1.Finalizer) }
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return holds(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return holds(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return holds(e.ObjectOld) != holds(e.ObjectNew) },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func (r *credentialsReconciler) setup(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).Named("credentials").For(&corev1.Secret{})
	for _, k := range kinds {
		b = b.Watches(k.newObject(), r.secretsHandler(), builder.WithPredicates(finalizerChanged()))
	}
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("setting up the credentials controller: %w", err)
	}
	return nil
}
