package controllers

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// Status ownership. Two writers share a billing object's status, and each field has exactly one of them as its
// owner. Each writes its own fields with server-side apply under its own field manager, without a resourceVersion:
// the API server merges the two, so neither can overwrite the other's fields and a write never conflicts (a conflict
// would cost a new pass, and a new pass may cost Stripe calls).
//
//   - The reconciler (field manager "stripe-operator") owns what it learns by calling Stripe: status.id,
//     observedGeneration, the Ready, Reconciling and Stalled conditions, createKey, lastSyncedAt, the handled
//     markers, and the kind's fields read from Stripe.
//   - The event worker (field manager "stripe-operator-events") owns what events bring: the PaymentFailed and
//     Disputed conditions, disputes, lastEventID and lastEventCreated, syncRequest, and, while webhooks flow, the
//     fields Stripe changes on its own (a kind's lifecycleFields: a subscription's state, period and latest invoice).
//     When the reconciler reads such fields from Stripe, it hands them to the worker (eventWorker.handover), which
//     writes them.
//
// The worker asks the reconciler for a read from Stripe by writing status.syncRequest (an event ID); the reconciler
// answers by reading Stripe and recording it as lastHandledSyncRequest.
const (
	ownerReconciler = "stripe-operator"
	ownerEvents     = "stripe-operator-events"
)

// eventOwnedFields are the status fields the event worker owns in every kind.
var eventOwnedFields = []string{"lastEventID", "lastEventCreated", "syncRequest", "disputes", "entitlements",
	"entitlementsConfirmedAt"}

// eventOwnedConditions are the condition types the event worker owns; the reconciler owns the others.
var eventOwnedConditions = []string{billingv1.ConditionPaymentFailed, billingv1.ConditionDisputed}

// statusOwner projects a billing object's status onto the fields one writer owns.
type statusOwner struct {
	name string
	// webhooks: events flow, so the worker owns the kinds' lifecycle fields.
	webhooks bool
}

func (o statusOwner) ownsField(kind, field string) bool {
	worker := slices.Contains(eventOwnedFields, field)
	if !worker && o.webhooks {
		if k, ok := kindByName(kind); ok && slices.Contains(k.lifecycleFields, field) {
			worker = true
		}
	}
	return worker == (o.name == ownerEvents)
}

func (o statusOwner) ownsCondition(typ string) bool {
	return slices.Contains(eventOwnedConditions, typ) == (o.name == ownerEvents)
}

// project returns the owner's part of obj's status, as JSON values.
func (o statusOwner) project(obj billingv1.StripeObject) (map[string]any, error) {
	kind, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s to unstructured: %w", kind, err)
	}
	status, _ := u["status"].(map[string]any)
	out := map[string]any{}
	for field, v := range status {
		if field == "conditions" {
			continue
		}
		if o.ownsField(kind, field) {
			out[field] = v
		}
	}
	var conds []any
	if l, ok := status["conditions"].([]any); ok {
		for _, c := range l {
			if m, ok := c.(map[string]any); ok && o.ownsCondition(fmt.Sprint(m["type"])) {
				conds = append(conds, c)
			}
		}
	}
	if len(conds) > 0 {
		out["conditions"] = conds
	}
	return out, nil
}

// sameAs reports whether the owner's fields are the same in base and obj, the fields named by ignore aside.
func (o statusOwner) sameAs(base, obj billingv1.StripeObject, ignore ...string) (bool, error) {
	had, err := o.project(base)
	if err != nil {
		return false, err
	}
	want, err := o.project(obj)
	if err != nil {
		return false, err
	}
	for _, f := range ignore {
		delete(had, f)
		delete(want, f)
	}
	return reflect.DeepEqual(had, want), nil
}

// apply writes the owner's fields of obj's status with server-side apply, unless they are the same in base (the
// object as read): a write that changes nothing is not sent. A deleted object is not an error.
func (o statusOwner) apply(ctx context.Context, c client.Client, base, obj billingv1.StripeObject) error {
	if base != nil {
		if same, err := o.sameAs(base, obj); err != nil || same {
			return err
		}
	}
	return o.applyAt(ctx, c, obj, "")
}

// applyAt writes the owner's fields of obj's status; with a resourceVersion, only if the object is still at it
// (otherwise a Conflict error is returned).
func (o statusOwner) applyAt(ctx context.Context, c client.Client, obj billingv1.StripeObject,
	resourceVersion string) error {
	want, err := o.project(obj)
	if err != nil {
		return err
	}
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Errorf("finding the kind of %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": want}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(obj.GetNamespace())
	u.SetName(obj.GetName())
	// The UID makes sure the write lands on the object that was read, not on a re-created one of the same name.
	u.SetUID(obj.GetUID())
	u.SetResourceVersion(resourceVersion)
	err = c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(o.name),
		client.ForceOwnership)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("applying the status fields of %s: %w", o.name, err)
	}
	return nil
}
