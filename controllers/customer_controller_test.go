package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func newCustomer(ns, name string) *billingv1.Customer {
	return &billingv1.Customer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.CustomerSpec{Email: name + "@example.com", Name: "Customer " + name,
			Metadata: billingv1.Metadata{"tenant": name}, DefaultPaymentMethod: "pm_card_visa"},
	}
}

func stripeCustomer(t *testing.T, id string) *stripego.Customer {
	t.Helper()
	c := simClient()
	cus, err := c.API.Customers.Get(id, nil)
	if err != nil {
		t.Fatalf("reading %s from the simulator: %v", id, err)
	}
	return cus
}

func TestCustomerCreateUpdateDelete(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "acme")
	cus.Spec.Address = &billingv1.Address{Line1: "1 Main St", Country: "US"}
	cus.Spec.DefaultPaymentMethod = "pm_card_visa"
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	cus = waitReady(t, ctx, cus)
	if !strings.HasPrefix(cus.Status.ID, "cus_") || PendingCreate(cus) != nil || cus.Status.LastSyncedAt == nil ||
		cus.Status.ObservedGeneration != cus.Generation {
		t.Fatalf("status after create: %+v", cus.Status)
	}
	got := stripeCustomer(t, cus.Status.ID)
	want := map[string]string{"tenant": "acme", "k8s_uid": string(cus.UID), "k8s_namespace": ns,
		"k8s_name": "acme", "k8s_kind": "Customer", "k8s_cluster": "test-cluster"}
	for k, v := range want {
		if got.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, got.Metadata[k], v)
		}
	}
	if got.Email != "acme@example.com" || got.Address.Country != "US" || cus.Status.DefaultPaymentMethod == nil ||
		customerDefaultPM(got) != cus.Status.DefaultPaymentMethod.ID {
		t.Errorf("Stripe customer: %+v", got)
	}

	// A spec change sends only what changed; a removed metadata key is unset in Stripe. It costs one read and one
	// write: the update diffs against what the observation read.
	reads, updates := calls("GET /v1/customers/{id}"), calls("POST /v1/customers/{id}")
	cus.Spec.Email = "billing@acme.example"
	cus.Spec.Metadata = nil
	if err := env.Client.Update(ctx, cus); err != nil {
		t.Fatal(err)
	}
	cus = waitReady(t, ctx, cus)
	if r, u := calls("GET /v1/customers/{id}")-reads, calls("POST /v1/customers/{id}")-updates; r != 1 || u != 1 {
		t.Errorf("the update took %d reads and %d writes, want 1 and 1", r, u)
	}
	got = stripeCustomer(t, cus.Status.ID)
	if got.Email != "billing@acme.example" || got.Metadata["tenant"] != "" || got.Metadata["k8s_uid"] != string(cus.UID) {
		t.Errorf("after update: email %q metadata %v", got.Email, got.Metadata)
	}

	// Orphan (the default) leaves the Stripe customer in place.
	if err := env.Client.Delete(ctx, cus); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, cus)
	if got := stripeCustomer(t, cus.Status.ID); got.Deleted {
		t.Error("Orphan deleted the Stripe customer")
	}

	// Delete deletes it.
	del := newCustomer(ns, "doomed")
	del.Spec.DeletionPolicy = billingv1.CustomerDelete
	if err := env.Client.Create(ctx, del); err != nil {
		t.Fatal(err)
	}
	del = waitReady(t, ctx, del)
	if err := env.Client.Delete(ctx, del); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, del)
	if got := stripeCustomer(t, del.Status.ID); !got.Deleted {
		t.Error("Delete left the Stripe customer")
	}
}

func TestCustomerAdoption(t *testing.T) {
	ctx, ns := newNamespace(t)
	existing, err := simClient().API.Customers.New(&stripego.CustomerParams{Email: stripego.String("old@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	cus := newCustomer(ns, "adopted")
	cus.Spec.Adopt = &billingv1.CustomerAdopt{ID: existing.ID}
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	cus = waitReady(t, ctx, cus)
	if cus.Status.ID != existing.ID {
		t.Fatalf("adopted %s, want %s", cus.Status.ID, existing.ID)
	}
	got := stripeCustomer(t, existing.ID)
	if got.Email != "adopted@example.com" || got.Metadata["k8s_uid"] != string(cus.UID) {
		t.Errorf("the adopted customer was not brought to the spec: %+v", got)
	}
}

func TestZeroIdleWrites(t *testing.T) {
	ctx, ns := newNamespace(t)
	objs := make([]*billingv1.Customer, 0, 5)
	for i := range 5 {
		c := newCustomer(ns, fmt.Sprintf("idle-%d", i))
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, c)
	}
	for _, c := range objs {
		waitReady(t, ctx, c)
	}
	before := writes()
	// Ask for a reconcile of each: the operator reads Stripe, finds it in sync, and writes nothing.
	for _, c := range objs {
		patch := client.MergeFrom(c.DeepCopy())
		c.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: time.Now().String()}
		if err := env.Client.Patch(ctx, c, patch); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range objs {
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
				return err
			}
			if c.Status.LastHandledReconcileAt != c.Annotations[billingv1.AnnotationReconcileRequestedAt] {
				return fmt.Errorf("reconcile request not handled yet")
			}
			return nil
		})
	}
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes for in-sync objects", n)
	}
}

func TestCustomerExactlyOnceUnderCommitThenFail(t *testing.T) {
	ctx, ns := newNamespace(t)
	f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultCommitThenFail, Method: "POST",
		Path: "/v1/customers", Response: "drop"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.RemoveFault(f.ID) })
	attaches, updates := calls("POST /v1/payment_methods/{id}/attach"), calls("POST /v1/customers/{id}")
	objs := make([]*billingv1.Customer, 0, 5)
	for i := range 5 {
		c := newCustomer(ns, fmt.Sprintf("once-%d", i))
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, c)
	}
	for _, c := range objs {
		c = waitReady(t, ctx, c)
		if n := sim.ObjectsByUID()["customer"][string(c.UID)]; n != 1 {
			t.Errorf("%s: %d Stripe customers, want exactly 1", c.Name, n)
		}
		// The recovered create attached the payment method: it is recorded, not attached a second time.
		if rec, pm := c.Status.DefaultPaymentMethod, customerDefaultPM(stripeCustomer(t, c.Status.ID)); rec == nil ||
			rec.Spec != c.Spec.DefaultPaymentMethod || rec.ID != pm {
			t.Errorf("%s: status.defaultPaymentMethod %+v, Stripe's default %s", c.Name, rec, pm)
		}
	}
	if a, u := calls("POST /v1/payment_methods/{id}/attach")-attaches, calls("POST /v1/customers/{id}")-updates; a != 0 ||
		u != 0 {
		t.Errorf("recovered creates made %d attaches and %d customer updates, want none", a, u)
	}
	if fired := faultFired(f.ID); fired < 5 {
		t.Errorf("the fault fired %d times; every create should have hit it", fired)
	}
}

func faultFired(id string) int {
	for _, f := range sim.Faults() {
		if f.ID == id {
			return f.Fired
		}
	}
	return -1
}

// The manager is stopped after Stripe committed a create but before the status write, and started again.
func TestCustomerCrashAfterCommit(t *testing.T) {
	for _, expire := range []bool{false, true} {
		name := "within the idempotency window"
		if expire {
			name = "after the simulator expired the key"
		}
		t.Run(name, func(t *testing.T) {
			ctx, ns := newNamespace(t)
			// The create is held for a second after the key is taken, and then committed: the manager is stopped
			// meanwhile, so it never records the result.
			f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultLatency, Method: "POST",
				Path: "/v1/customers", LatencyMS: 1500, Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.RemoveFault(f.ID) })
			c := newCustomer(ns, "crash")
			if err := env.Client.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				if faultFired(f.ID) != 1 {
					return fmt.Errorf("the create has not reached Stripe")
				}
				return nil
			})
			manager.stop()
			testenv.Eventually(t, 10*time.Second, func() error {
				if sim.ObjectsByUID()["customer"][string(c.UID)] != 1 {
					return fmt.Errorf("Stripe has not committed the create")
				}
				return nil
			})
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
				t.Fatal(err)
			}
			if c.Status.ID != "" || PendingCreate(c) == nil {
				t.Fatalf("want a pending create and no ID after the crash, got %+v", c.Status)
			}
			if expire {
				sim.ExpireIdempotencyKeys()
			}
			if manager, err = startManager(); err != nil {
				t.Fatal(err)
			}
			c = waitReady(t, ctx, c)
			if n := sim.ObjectsByUID()["customer"][string(c.UID)]; n != 1 {
				t.Errorf("%d Stripe customers after the restart, want exactly 1", n)
			}
			if PendingCreate(c) != nil {
				t.Error("pending create left in status")
			}
		})
	}
}

func TestDeletedInStripe(t *testing.T) {
	ctx, ns := newNamespace(t)
	c := newCustomer(ns, "vanishing")
	if err := env.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	c = waitReady(t, ctx, c)
	oldID := c.Status.ID
	if _, err := simClient().API.Customers.Del(oldID, nil); err != nil {
		t.Fatal(err)
	}
	// A resync (asked for here) finds it deleted: Stalled, and not re-created.
	patch := client.MergeFrom(c.DeepCopy())
	c.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: "1"}
	if err := env.Client.Patch(ctx, c, patch); err != nil {
		t.Fatal(err)
	}
	cond := waitReason(t, ctx, c, billingv1.ReasonDeletedInStripe)
	if !strings.Contains(cond.Message, billingv1.AnnotationRecreate) {
		t.Errorf("the message does not say how to re-create: %q", cond.Message)
	}
	if n := sim.ObjectsByUID()["customer"][string(c.UID)]; n != 1 {
		t.Errorf("%d customers: re-created without being asked", n)
	}
	// The annotation asks for re-creation.
	patch = client.MergeFrom(c.DeepCopy())
	c.Annotations[billingv1.AnnotationRecreate] = oldID
	if err := env.Client.Patch(ctx, c, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return err
		}
		if c.Status.ID == oldID || c.Status.ID == "" {
			return fmt.Errorf("not re-created yet: %+v", c.Status)
		}
		return nil
	})
	waitReady(t, ctx, c)
	if n := sim.ObjectsByUID()["customer"][string(c.UID)]; n != 2 {
		t.Errorf("%d customers for the UID, want the deleted one and its replacement", n)
	}
}
