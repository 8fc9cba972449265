package controllers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

func TestStripeIDsFollowTheObjects(t *testing.T) {
	cus := func(ns, name, id string) *billingv1.Customer {
		c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		c.Status.ID = id
		return c
	}
	want := func(s *stripeIDs, kind, id string, key types.NamespacedName, ok bool) {
		t.Helper()
		got, found := s.get(kind, id)
		if found != ok || got != key {
			t.Errorf("%s %s: %v %v, want %v %v", kind, id, got, found, key, ok)
		}
	}
	a := types.NamespacedName{Namespace: "team-a", Name: "acme"}
	b := types.NamespacedName{Namespace: "team-b", Name: "acme"}
	s := newStripeIDs()

	s.set(kindCustomer, nil, cus("team-a", "acme", "")) // no ID yet
	want(s, kindCustomer, "", types.NamespacedName{}, false)
	s.set(kindCustomer, cus("team-a", "acme", ""), cus("team-a", "acme", "cus_1"))
	s.set(kindCustomer, nil, cus("team-b", "acme", "cus_2"))
	want(s, kindCustomer, "cus_1", a, true)
	want(s, kindCustomer, "cus_2", b, true)
	want(s, kindProduct, "cus_1", types.NamespacedName{}, false) // IDs are per kind

	// A new Stripe object (recreated after a deletion in Stripe) moves the entry.
	s.set(kindCustomer, cus("team-a", "acme", "cus_1"), cus("team-a", "acme", "cus_3"))
	want(s, kindCustomer, "cus_1", types.NamespacedName{}, false)
	want(s, kindCustomer, "cus_3", a, true)

	// Another object adopting an ID keeps it when the first one lets go.
	s.set(kindCustomer, nil, cus("team-b", "other", "cus_3"))
	s.set(kindCustomer, cus("team-a", "acme", "cus_3"), nil)
	want(s, kindCustomer, "cus_3", types.NamespacedName{Namespace: "team-b", Name: "other"}, true)

	// A deletion seen late (the informer's tombstone) removes the entry.
	s.set(kindCustomer, toolscache.DeletedFinalStateUnknown{Obj: cus("team-b", "acme", "cus_2")}, nil)
	want(s, kindCustomer, "cus_2", types.NamespacedName{}, false)
	if len(s.byID) != 1 {
		t.Errorf("%d entries, want 1", len(s.byID))
	}
}

// The notification that re-queues the events waiting for an object's Stripe ID records the ID itself: the map's
// own notification of the same change may come later (informers deliver to each handler in its own time), and an
// event re-queued before it would find nothing and stay Unroutable.
func TestEventsRoutedByRecordsTheID(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := billingv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "plan"}}
	sub.Status.ID = "sub_late"
	payload := `{"id":"evt_1","object":"event","type":"customer.discount.created","data":{"object":` +
		`{"id":"di_1","object":"discount","subscription":"sub_late"}}}`
	waiting := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "evt-1"},
		Spec: billingv1.StripeEventSpec{EventID: "evt_1", Type: "customer.discount.created", Payload: payload,
			ObjectID: "di_1", ObjectType: stripeObjectDiscount},
		Status: billingv1.StripeEventStatus{Phase: billingv1.EventUnroutable, Attempts: 6}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(waiting).
		WithIndex(&billingv1.StripeEvent{}, indexEventRoute, func(o client.Object) []string {
			if id := routeID(o.(*billingv1.StripeEvent)); id != "" {
				return []string{id}
			}
			return nil
		}).Build()
	ids := newStripeIDs()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	eventsRoutedBy(c, ids, kindSubscription).Update(context.Background(),
		event.UpdateEvent{ObjectOld: &billingv1.Subscription{ObjectMeta: sub.ObjectMeta}, ObjectNew: sub}, q)
	if got, ok := ids.get(kindSubscription, "sub_late"); !ok || got != client.ObjectKeyFromObject(sub) {
		t.Errorf("the ID is not recorded: %v %v", got, ok)
	}
	if q.Len() != 1 {
		t.Errorf("%d events re-queued, want 1", q.Len())
	}
	if !ids.synced() {
		t.Error("a map without informers is not synced")
	}
	ids.handlers = append(ids.handlers, notSynced{})
	if ids.synced() {
		t.Error("synced while a handler has not seen its initial list")
	}
}

// notSynced is a handler registration that has not seen its informer's initial list.
type notSynced struct {
	toolscache.ResourceEventHandlerRegistration
}

func (notSynced) HasSynced() bool { return false }
