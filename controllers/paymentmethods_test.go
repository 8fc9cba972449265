package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// The suite's stripesim runs with StrictPaymentMethods, so these tests see Stripe's rules: a test token becomes a
// new pm_ object each time it is attached, and a default must be attached to the customer.

func stripePaymentMethod(t *testing.T, id string) *stripego.PaymentMethod {
	t.Helper()
	pm, err := simClient().API.PaymentMethods.Get(id, nil)
	if err != nil {
		t.Fatalf("reading payment method %s from the simulator: %v", id, err)
	}
	return pm
}

// checkAttachedDefault checks that id is a pm_ object (not the test token) attached to customer cus, with the card
// brand of the token it was made from.
func checkAttachedDefault(t *testing.T, id, cus, brand string) {
	t.Helper()
	if !strings.HasPrefix(id, "pm_") || strings.HasPrefix(id, "pm_card_") {
		t.Fatalf("default payment method %q is not a payment method object", id)
	}
	pm := stripePaymentMethod(t, id)
	if pm.Customer == nil || pm.Customer.ID != cus {
		t.Errorf("payment method %s is attached to %+v, want %s", id, pm.Customer, cus)
	}
	if pm.Card == nil || string(pm.Card.Brand) != brand {
		t.Errorf("payment method %s has card %+v, want brand %s", id, pm.Card, brand)
	}
}

// requestReconcile asks for a pass over obj and waits until it has been handled.
func requestReconcile[T billingv1.StripeObject](t *testing.T, ctx context.Context, obj T, value string) {
	t.Helper()
	patch := client.MergeFrom(obj.DeepCopyObject().(T))
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[billingv1.AnnotationReconcileRequestedAt] = value
	obj.SetAnnotations(ann)
	if err := env.Client.Patch(ctx, obj, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if obj.GetStripeStatus().LastHandledReconcileAt != value {
			return fmt.Errorf("reconcile request %q not handled yet", value)
		}
		return nil
	})
}

// TestCustomerDefaultPaymentMethodAttach: the customer's default payment method is attached before it becomes the
// invoice default, status records the pm_ ID each spec value became, and the Customer stays Ready without updating
// Stripe again (no drift between the token in the spec and the ID Stripe holds).
func TestCustomerDefaultPaymentMethodAttach(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "cards") // pm_card_visa
	create(t, cus)
	cus = waitReady(t, ctx, cus)
	firstVisa := customerDefaultPM(stripeCustomer(t, cus.Status.ID))
	checkAttachedDefault(t, firstVisa, cus.Status.ID, "visa")
	if rec := cus.Status.DefaultPaymentMethod; rec == nil || rec.Spec != "pm_card_visa" || rec.ID != firstVisa {
		t.Errorf("status.defaultPaymentMethod after create is %+v, want pm_card_visa attached as %s", rec, firstVisa)
	}

	updates, attaches := calls("POST /v1/customers/{id}"), calls("POST /v1/payment_methods/{id}/attach")
	steps := []struct{ token, brand string }{{"pm_card_mastercard", "mastercard"}, {"pm_card_visa", "visa"}}
	for i, step := range steps {
		cus.Spec.DefaultPaymentMethod = step.token
		if err := env.Client.Update(ctx, cus); err != nil {
			t.Fatal(err)
		}
		cus = waitReady(t, ctx, cus)
		got := customerDefaultPM(stripeCustomer(t, cus.Status.ID))
		checkAttachedDefault(t, got, cus.Status.ID, step.brand)
		if rec := cus.Status.DefaultPaymentMethod; rec == nil || rec.Spec != step.token || rec.ID != got {
			t.Errorf("status.defaultPaymentMethod after changing to %s is %+v, want it attached as %s", step.token,
				rec, got)
		}
		if step.token == "pm_card_visa" && got == firstVisa {
			t.Errorf("the token was not attached again: the default is %s, as after create", got)
		}
		// Each change is one attach and one update.
		if u, a := calls("POST /v1/customers/{id}")-updates, calls("POST /v1/payment_methods/{id}/attach")-attaches; u != int64(i+1) || a != int64(i+1) {
			t.Errorf("after %d changes: %d customer updates and %d attaches, want %d of each", i+1, u, a, i+1)
		}
	}

	// In sync: passes over the Customer read Stripe and write nothing.
	updates, attaches = calls("POST /v1/customers/{id}"), calls("POST /v1/payment_methods/{id}/attach")
	for i := range 3 {
		requestReconcile(t, ctx, cus, fmt.Sprintf("resync-%d", i))
	}
	cus = waitReady(t, ctx, cus)
	if u, a := calls("POST /v1/customers/{id}")-updates, calls("POST /v1/payment_methods/{id}/attach")-attaches; u != 0 || a != 0 {
		t.Errorf("%d customer updates and %d attaches for a Customer in sync", u, a)
	}
	// One card per change: the create's, then one per attach.
	it := simClient().API.Customers.ListPaymentMethods(&stripego.CustomerListPaymentMethodsParams{
		Customer: stripego.String(cus.Status.ID)})
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d payment methods attached to the customer, want 3", n)
	}
}

// TestCustomerPaymentMethodOfAnotherCustomer: a payment method attached to another customer is refused by Stripe,
// and the Customer is Stalled with Stripe's message.
func TestCustomerPaymentMethodOfAnotherCustomer(t *testing.T) {
	ctx, ns := newNamespace(t)
	owner, other := newCustomer(ns, "owner"), newCustomer(ns, "other")
	other.Spec.DefaultPaymentMethod = "pm_card_mastercard"
	create(t, owner, other)
	owner, other = waitReady(t, ctx, owner), waitReady(t, ctx, other)
	taken := customerDefaultPM(stripeCustomer(t, owner.Status.ID))

	other.Spec.DefaultPaymentMethod = taken
	if err := env.Client.Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	cond := waitReason(t, ctx, other, billingv1.ReasonInvalidRequest)
	if !strings.Contains(cond.Message, "already been attached to a customer") || cond.Status == "True" ||
		!isStalled(other) {
		t.Errorf("Ready condition: %+v", cond)
	}
	if got := stripePaymentMethod(t, taken); got.Customer == nil || got.Customer.ID != owner.Status.ID {
		t.Errorf("payment method %s moved to %+v", taken, got.Customer)
	}
}

// TestSubscriptionDefaultPaymentMethod: a subscription's default payment method is attached to its customer first,
// and the subscription is Ready under Stripe's rules, in sync with the ID status records.
func TestSubscriptionDefaultPaymentMethod(t *testing.T) {
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "sub", "cus", "a")
	sub.Spec.DefaultPaymentMethod = "pm_card_mastercard"
	create(t, newCustomer(ns, "cus"), newProduct(ns, "plan"), newPrice(ns, "a", 100), sub)
	sub = waitReady(t, ctx, sub)
	got := stripeSubscription(t, sub.Status.ID)
	if got.DefaultPaymentMethod == nil {
		t.Fatalf("Stripe's subscription has no default payment method")
	}
	checkAttachedDefault(t, got.DefaultPaymentMethod.ID, sub.Status.CustomerID, "mastercard")
	rec := sub.Status.DefaultPaymentMethod
	if rec == nil || rec.Spec != "pm_card_mastercard" || rec.ID != got.DefaultPaymentMethod.ID {
		t.Fatalf("status.defaultPaymentMethod is %+v, Stripe's default %s", rec, got.DefaultPaymentMethod.ID)
	}

	sub.Spec.DefaultPaymentMethod = "pm_card_visa"
	if err := env.Client.Update(ctx, sub); err != nil {
		t.Fatal(err)
	}
	sub = waitReady(t, ctx, sub)
	if rec = sub.Status.DefaultPaymentMethod; rec == nil || rec.Spec != "pm_card_visa" {
		t.Fatalf("status.defaultPaymentMethod after the change: %+v", rec)
	}
	if got = stripeSubscription(t, sub.Status.ID); got.DefaultPaymentMethod == nil ||
		got.DefaultPaymentMethod.ID != rec.ID {
		t.Fatalf("Stripe's default after the change is %+v, status records %s", got.DefaultPaymentMethod, rec.ID)
	}
	checkAttachedDefault(t, rec.ID, sub.Status.CustomerID, "visa")

	updates := calls("POST /v1/subscriptions/{id}")
	requestReconcile(t, ctx, sub, "resync")
	if n := calls("POST /v1/subscriptions/{id}") - updates; n != 0 {
		t.Errorf("%d subscription updates for a Subscription in sync", n)
	}

	sub.Spec.DefaultPaymentMethod = ""
	if err := env.Client.Update(ctx, sub); err != nil {
		t.Fatal(err)
	}
	sub = waitReady(t, ctx, sub)
	if got = stripeSubscription(t, sub.Status.ID); got.DefaultPaymentMethod != nil ||
		sub.Status.DefaultPaymentMethod != nil {
		t.Errorf("after removing it: Stripe's default %+v, status %+v", got.DefaultPaymentMethod,
			sub.Status.DefaultPaymentMethod)
	}
}
