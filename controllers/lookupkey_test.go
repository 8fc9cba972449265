package controllers

import (
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// A GitOps rename is a delete of the old Price and a create of the new one with the same lookupKey, in either order
// or in one apply (Argo CD, Flux). It ends with the new Price holding the key, the old one archived without it, and
// the product's default_price on the new one, since it was on the old one.
func TestPriceRenameHandsOverTheLookupKey(t *testing.T) {
	for _, order := range []string{"delete then create", "create then delete", "one apply"} {
		t.Run(order, func(t *testing.T) {
			ctx, ns := newNamespace(t)
			key := ns + "-pro"
			prod := newProduct(ns, "plan")
			old := newPrice(ns, "pro-monthly", 2000)
			old.Spec.LookupKey = key
			create(t, prod, old)
			old = waitReady(t, ctx, old)
			prod = waitReady(t, ctx, prod)
			oldID := old.Status.ID
			if _, err := simClient().API.Products.Update(prod.Status.ID,
				&stripego.ProductParams{DefaultPrice: stripego.String(oldID)}); err != nil {
				t.Fatal(err)
			}
			renamed := newPrice(ns, "pro-monthly-v2", 2000)
			renamed.Spec.LookupKey = key
			switch order {
			case "delete then create":
				if err := env.Client.Delete(ctx, old); err != nil {
					t.Fatal(err)
				}
				waitGone(t, ctx, old)
				create(t, renamed)
			case "create then delete":
				create(t, renamed)
				// It waits, without a Stripe price, while the old Price holds the key.
				time.Sleep(2 * time.Second)
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(renamed), renamed); err != nil {
					t.Fatal(err)
				}
				if renamed.Status.ID != "" || sim.ObjectsByUID()["price"][string(renamed.UID)] != 0 {
					t.Fatalf("the new Price made a Stripe price while the old one held the key: %+v",
						renamed.Status)
				}
				if err := env.Client.Delete(ctx, old); err != nil {
					t.Fatal(err)
				}
			case "one apply":
				create(t, renamed)
				if err := env.Client.Delete(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
			renamed = waitReady(t, ctx, renamed)
			waitGone(t, ctx, old)
			if got := stripePrice(t, renamed.Status.ID); got.LookupKey != key || !got.Active {
				t.Errorf("the new price: lookup key %q, active %v", got.LookupKey, got.Active)
			}
			if got := stripePrice(t, oldID); got.LookupKey != "" || got.Active {
				t.Errorf("the old price: lookup key %q, active %v", got.LookupKey, got.Active)
			}
			got, err := simClient().API.Products.Get(prod.Status.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.DefaultPrice == nil || got.DefaultPrice.ID != renamed.Status.ID {
				t.Errorf("the product's default price is %v, want the new price %s", got.DefaultPrice,
					renamed.Status.ID)
			}
			if n := sim.ObjectsByUID()["price"][string(renamed.UID)]; n != 1 {
				t.Errorf("%d Stripe prices for the new Price", n)
			}
		})
	}
}

// A lookup key held by an active price this operator did not create is not taken: the Price is Stalled, naming the
// holder and the field to set; with spec.transferLookupKey it takes the key.
func TestLookupKeyHeldByAnUnmanagedPrice(t *testing.T) {
	ctx, ns := newNamespace(t)
	prod := newProduct(ns, "plan")
	create(t, prod)
	prod = waitReady(t, ctx, prod)
	key := ns + "-legacy"
	legacy, err := simClient().API.Prices.New(&stripego.PriceParams{Product: stripego.String(prod.Status.ID),
		Currency: stripego.String("usd"), UnitAmount: stripego.Int64(900), LookupKey: stripego.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	pr := newPrice(ns, "monthly", 1000)
	pr.Spec.LookupKey = key
	create(t, pr)
	cond := waitReason(t, ctx, pr, billingv1.ReasonInvalidRequest)
	assertStalled(t, pr)
	for _, want := range []string{legacy.ID, "not managed by this operator", "spec.transferLookupKey: true"} {
		if !strings.Contains(cond.Message, want) {
			t.Errorf("message %q lacks %q", cond.Message, want)
		}
	}
	if got := stripePrice(t, legacy.ID); got.LookupKey != key {
		t.Fatalf("the key was taken without transferLookupKey: %q", got.LookupKey)
	}

	pr.Spec.TransferLookupKey = true
	if err := env.Client.Update(ctx, pr); err != nil {
		t.Fatal(err)
	}
	pr = waitReady(t, ctx, pr)
	if got := stripePrice(t, pr.Status.ID); got.LookupKey != key {
		t.Errorf("the Price's price has lookup key %q", got.LookupKey)
	}
	if got := stripePrice(t, legacy.ID); got.LookupKey != "" || !got.Active {
		t.Errorf("the legacy price: lookup key %q, active %v (it keeps being active)", got.LookupKey, got.Active)
	}
}

// A lookup key the operator stamped for a Price that no longer exists (deleted with deletionPolicy Orphan, so its
// price is still active) is taken over without transferLookupKey; one whose Price still exists in another
// namespace and claims it is not.
func TestLookupKeyOfAGoneOrLivePrice(t *testing.T) {
	ctx, ns := newNamespace(t)
	create(t, newProduct(ns, "plan"))
	key := ns + "-shared"
	orphaned := newPrice(ns, "orphaned", 500)
	orphaned.Spec.LookupKey = key
	orphaned.Spec.DeletionPolicy = billingv1.Orphan
	create(t, orphaned)
	orphaned = waitReady(t, ctx, orphaned)
	if err := env.Client.Delete(ctx, orphaned); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, orphaned)
	if got := stripePrice(t, orphaned.Status.ID); !got.Active || got.LookupKey != key {
		t.Fatalf("Orphan changed the price: %+v", got)
	}
	heir := newPrice(ns, "heir", 600)
	heir.Spec.LookupKey = key
	create(t, heir)
	heir = waitReady(t, ctx, heir)
	if got := stripePrice(t, heir.Status.ID); got.LookupKey != key {
		t.Errorf("the heir has lookup key %q", got.LookupKey)
	}

	// The heir's Price lives on and claims the key: a Price of another namespace is refused, naming it.
	ctx2, ns2 := newNamespace(t)
	create(t, newProduct(ns2, "plan"))
	rival := newPrice(ns2, "rival", 700)
	rival.Spec.LookupKey = key
	create(t, rival)
	cond := waitReason(t, ctx2, rival, billingv1.ReasonInvalidRequest)
	if !strings.Contains(cond.Message, "Price "+ns+"/heir, which still claims the key") {
		t.Errorf("message %q does not name the Price that claims the key", cond.Message)
	}
	if got := stripePrice(t, heir.Status.ID); got.LookupKey != key {
		t.Errorf("the key moved to the rival: the heir has %q", got.LookupKey)
	}
	// Once the heir no longer claims it, the rival takes it (asked to look again by a reconcile request).
	heir.Spec.LookupKey = ""
	if err := env.Client.Update(ctx, heir); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ctx, heir)
	requestReconcile(t, ctx2, rival, "after-release")
	rival = waitReady(t, ctx2, rival)
	if got := stripePrice(t, rival.Status.ID); got.LookupKey != key {
		t.Errorf("the rival has lookup key %q", got.LookupKey)
	}
}
