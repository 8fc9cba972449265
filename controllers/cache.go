package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// StripForCache is the informer cache's transform: it drops from the cached copy of an object what the operator
// never reads, which was most of a billing object's size:
//   - managedFields and kubectl's last-applied-configuration annotation (a Secret's would be a second copy of its
//     key): status writes are server-side applies of the fields the operator owns and metadata writes are patches,
//     so neither needs them;
//   - a billing object's pending-create record once status.createKey shows its create recorded: PendingCreate
//     reads such a record as none, and the record is rewritten, not edited, when the next create (a rollover)
//     starts. An unrecorded or foreign record stays, so an interrupted create is still recovered.
//
// An object left with no annotations has none in the cache, not an empty map.
func StripForCache(in any) (any, error) {
	o, ok := in.(client.Object)
	if !ok {
		return in, nil
	}
	o.SetManagedFields(nil)
	ann := o.GetAnnotations()
	if ann == nil {
		return in, nil
	}
	n := len(ann)
	delete(ann, corev1.LastAppliedConfigAnnotation)
	if so, ok := o.(billingv1.StripeObject); ok {
		if _, has := ann[billingv1.AnnotationPendingCreate]; has && PendingCreate(so) == nil {
			delete(ann, billingv1.AnnotationPendingCreate)
		}
	}
	switch {
	case len(ann) == 0:
		o.SetAnnotations(nil)
	case len(ann) != n:
		o.SetAnnotations(ann)
	}
	return in, nil
}
