package controllers

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Setup registers the controllers of every billing kind with the manager.
func Setup(mgr ctrl.Manager, creds *credentials.Resolver, opts Options) error {
	recorder := mgr.GetEventRecorder("stripe-operator")
	cus := &Reconciler[*billingv1.Customer]{Client: mgr.GetClient(), Recorder: recorder, Credentials: creds,
		External: customerExternal{}, Options: opts, New: func() *billingv1.Customer { return &billingv1.Customer{} }}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&billingv1.Customer{}, builder.WithPredicates(changePredicate())).
		Named("customer").
		Complete(cus); err != nil {
		return fmt.Errorf("setting up the Customer controller: %w", err)
	}
	return nil
}

// changePredicate passes what should make the loop act: creation, a spec change (generation), an annotation
// change (reconcile-requested-at, recreate, resync-interval), and deletion. Status writes do not trigger it.
func changePredicate() predicate.Predicate {
	return predicate.Or[client.Object](
		predicate.GenerationChangedPredicate{},
		predicate.AnnotationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return !e.ObjectNew.GetDeletionTimestamp().IsZero()
		}},
	)
}
