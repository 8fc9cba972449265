package controllers

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// The event worker finds an object by its Stripe ID through the cache, across namespaces, from an index that keeps
// one key per object (indexAcrossNamespaces).
func TestStripeIDIndexAnswersAcrossNamespaces(t *testing.T) {
	ctx, ns := newNamespace(t)
	_, other := newNamespace(t)
	a, b := newCustomer(ns, "indexed"), newCustomer(other, "indexed")
	for _, c := range []*billingv1.Customer{a, b} {
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	a, b = waitReady(t, ctx, a), waitReady(t, ctx, b)
	for _, want := range []*billingv1.Customer{a, b} {
		l := &billingv1.CustomerList{}
		if err := manager.client.List(ctx, l, client.MatchingFields{indexStripeID: want.Status.ID}); err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 1 || l.Items[0].UID != want.UID {
			t.Errorf("objects with Stripe ID %s: %d, want %s/%s alone", want.Status.ID, len(l.Items), want.Namespace,
				want.Name)
		}
	}
	l := &billingv1.CustomerList{}
	if err := manager.client.List(ctx, l, client.MatchingFields{indexStripeID: "cus_nobody"}); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Errorf("%d objects with an unknown Stripe ID", len(l.Items))
	}
}
