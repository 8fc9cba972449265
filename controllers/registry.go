package controllers

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// The billing kinds, as stamped into Stripe metadata and named in event targets.
const (
	kindCustomer     = "Customer"
	kindProduct      = "Product"
	kindPrice        = "Price"
	kindSubscription = "Subscription"
	// kindCoupon and kindPromotionCode are the discounts.
	kindCoupon        = "Coupon"
	kindPromotionCode = "PromotionCode"
)

// kinds is the one registry of billing kinds: setup, the event router, the credentials controller and the metrics
// iterate it. A new kind is its own file (its External and its entry function) plus one line here.
var kinds = []kindEntry{customerKind(), productKind(), priceKind(), subscriptionKind(),
	couponKind(), promotionCodeKind(), taxRateKind(),
	meterKind(), portalKind(), entitlementFeatureKind()}

// kindEntry is everything the operator needs to know of one billing kind.
type kindEntry struct {
	// kind is the Kubernetes kind, stamped into Stripe metadata as k8s_kind.
	kind string
	// stripeObject is Stripe's name of the object type ("customer"), by which events are routed.
	stripeObject string
	// resource and ops label the Stripe request metrics (their zero series are created at start).
	resource string
	ops      []string
	// newObject and newList return empty objects of the kind.
	newObject func() billingv1.StripeObject
	newList   func() client.ObjectList
	// refs are the kinds this one references: a referenced object getting a Stripe ID re-queues its referrers.
	refs []reference
	// reconciler builds the kind's generic loop.
	reconciler func(d loopDeps) reconcile.Reconciler
	// lifecycleFields are status fields that Stripe changes on its own (a subscription's state, its latest invoice):
	// while webhooks flow, the event worker owns them (see ownership.go). The first is the Stripe object's own
	// state: while status lacks it, no event has brought the object, and a handover fills what status lacks.
	lifecycleFields []string
}

// reference is an index on the referring kind naming objects of another kind in the same namespace.
type reference struct {
	kind    string
	index   string
	extract func(client.Object) []string
}

// loopDeps is what every kind's loop is built from.
type loopDeps struct {
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
	creds     *credentials.Resolver
	opts      Options
	// handover passes what the loop read from Stripe of the fields the event worker owns (see ownership.go).
	handover func(ctx context.Context, base, obj billingv1.StripeObject) error
}

// entry builds a registry entry for kind T, so the per-kind files state only what differs.
func entry[T billingv1.StripeObject, L client.ObjectList](kind, stripeObject, resource string, newObj func() T,
	newList func() L, ext func(d loopDeps) External[T], ops ...string) kindEntry {
	return kindEntry{
		kind: kind, stripeObject: stripeObject, resource: resource, ops: ops,
		newObject: func() billingv1.StripeObject { return newObj() },
		newList:   func() client.ObjectList { return newList() },
		reconciler: func(d loopDeps) reconcile.Reconciler {
			return &Reconciler[T]{Client: d.client, APIReader: d.apiReader, Recorder: d.recorder,
				Credentials: d.creds, External: ext(d), Options: d.opts, New: newObj, Handover: d.handover}
		},
	}
}

// kindByName returns the registry entry of a Kubernetes kind.
func kindByName(kind string) (kindEntry, bool) {
	for _, k := range kinds {
		if k.kind == kind {
			return k, true
		}
	}
	return kindEntry{}, false
}

// kindByStripeObject returns the registry entry whose Stripe object type is obj ("customer").
func kindByStripeObject(obj string) (kindEntry, bool) {
	for _, k := range kinds {
		if k.stripeObject == obj {
			return k, true
		}
	}
	return kindEntry{}, false
}

// kindOf returns the Kubernetes kind of a billing object, or an error for a type that is not registered.
func kindOf(o runtime.Object) (string, error) {
	t := reflect.TypeOf(o)
	for _, k := range kinds {
		if reflect.TypeOf(k.newObject()) == t {
			return k.kind, nil
		}
	}
	return "", fmt.Errorf("%T is not a registered billing kind", o)
}

// kindName is kindOf for messages: an unregistered type is named by its Go type.
func kindName(o runtime.Object) string {
	if k, err := kindOf(o); err == nil {
		return k
	}
	return fmt.Sprintf("%T", o)
}

// forEachItem calls fn on every item of a list.
func forEachItem(l client.ObjectList, fn func(client.Object)) error {
	return meta.EachListItem(l, func(o runtime.Object) error {
		co, ok := o.(client.Object)
		if !ok {
			return fmt.Errorf("%T is not a client.Object", o)
		}
		fn(co)
		return nil
	})
}

// initRequestMetrics creates the zero series of the Stripe request metrics for every call the controllers and the
// event worker make, so that the alerts' rates see the first error.
func initRequestMetrics() {
	for _, k := range kinds {
		stripe.InitMetrics(k.resource, k.ops...)
	}
	stripe.InitMetrics(resPaymentIntent, stripe.OpRetrieve)
	stripe.InitMetrics(resCharge, stripe.OpRetrieve)
	stripe.InitMetrics(resDispute, stripe.OpRetrieve)
	stripe.InitMetrics(resPaymentMethod, opAttach)
	stripe.InitMetrics(resTaxID, stripe.OpCreate, stripe.OpDelete, stripe.OpList)
	stripe.InitMetrics(resProductFeature, stripe.OpCreate, stripe.OpDelete, stripe.OpList)
	stripe.InitMetrics(resActiveEntitlement, stripe.OpList)
}
