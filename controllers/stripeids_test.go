package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

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
