package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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
//     starts. An unrecorded or foreign record stays, so an interrupted create is still recovered;
//   - a StripeEvent's payload, but for what routing reads of its object (eventFields): a backlog of events waiting
//     to be folded (a renewal day stores tens of thousands within minutes) would otherwise hold every 3-4 KB
//     payload in memory. The worker reads the whole event from the API server when it folds it
//     (annotationRoutingPayload marks the cached copy).
//
// An object left with no annotations has none in the cache, not an empty map. The strings every object repeats (its
// namespace, finalizers, and its conditions' type, status and reason) are interned: one copy for all objects.
func StripForCache(in any) (any, error) {
	o, ok := in.(client.Object)
	if !ok {
		return in, nil
	}
	o.SetManagedFields(nil)
	if ev, ok := o.(*billingv1.StripeEvent); ok {
		compactPayload(ev)
	}
	internShared(o)
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

// annotationRoutingPayload marks a cached StripeEvent whose payload holds only what routing reads. It exists only in
// the operator's cache, never in the API server.
const annotationRoutingPayload = "billing.stripe-operator.io/routing-payload"

// compactPayload replaces a StripeEvent's payload by what routing reads of its object, and marks it.
func compactPayload(ev *billingv1.StripeEvent) {
	if ev.Spec.Payload == "" {
		return
	}
	var p payload
	var f objectFields
	if json.Unmarshal([]byte(ev.Spec.Payload), &p) != nil || json.Unmarshal(p.Data.Object, &f) != nil {
		return // not a payload the worker can read: kept whole, as the worker will report it
	}
	raw, err := json.Marshal(struct {
		Data struct {
			Object objectFields `json:"object"`
		} `json:"data"`
	}{Data: struct {
		Object objectFields `json:"object"`
	}{Object: f}})
	if err != nil {
		return
	}
	ev.Spec.Payload = string(raw)
	ann := ev.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[annotationRoutingPayload] = "true"
	ev.SetAnnotations(ann)
}

// routingPayloadOnly reports whether ev is a cached copy whose payload was compacted.
func routingPayloadOnly(ev *billingv1.StripeEvent) bool {
	_, ok := ev.GetAnnotations()[annotationRoutingPayload]
	return ok
}

// internShared makes the strings objects repeat share one copy each (unique.Make keeps the canonical copy).
func internShared(o client.Object) {
	o.SetNamespace(unique.Make(o.GetNamespace()).Value())
	if f := o.GetFinalizers(); len(f) > 0 {
		for i := range f {
			f[i] = unique.Make(f[i]).Value()
		}
	}
	if so, ok := o.(billingv1.StripeObject); ok {
		conds := so.GetStripeStatus().Conditions
		for i := range conds {
			c := &conds[i]
			c.Type = unique.Make(c.Type).Value()
			c.Status = metav1.ConditionStatus(unique.Make(string(c.Status)).Value())
			c.Reason = unique.Make(c.Reason).Value()
		}
	}
}

// cachedObjects returns the objects of obj's kind that the cache holds, as its informer's store has them: no list is
// built and nothing is copied (a List copies every object into its items, some 8 MB for 10,000 Subscriptions). The
// objects are the cache's own and must not be modified.
func cachedObjects(ctx context.Context, c cache.Cache, obj client.Object) ([]any, error) {
	inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, err
	}
	s, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok || s.GetStore() == nil {
		return nil, fmt.Errorf("the informer of %T has no store", obj)
	}
	return s.GetStore().List(), nil
}
