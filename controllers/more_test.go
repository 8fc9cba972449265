package controllers

import (
	"fmt"
	"strings"
	"testing"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
)

// With commit-then-fail on every create endpoint, each object ends with exactly one Stripe object.
func TestExactlyOnceOnEveryCreateEndpoint(t *testing.T) {
	ctx, ns := newNamespace(t)
	for _, path := range []string{"/v1/customers", "/v1/products", "/v1/prices", "/v1/subscriptions", "/v1/coupons",
		"/v1/promotion_codes", "/v1/tax_rates", "/v1/billing_portal/configurations"} {
		f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultCommitThenFail, Method: "POST", Path: path,
			Response: "500"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.RemoveFault(f.ID) })
	}
	objs := make([]billingv1.StripeObject, 0, 12)
	objs = append(objs, newProduct(ns, "plan"), newPrice(ns, "monthly", 700), newCoupon(ns, "deal"),
		newPromotionCode(ns, "deal-code", "deal", codeFor(ns, "DEAL")), newTaxRate(ns, "vat", "19"),
		newPortal(ns, "portal"))
	for i := range 3 {
		objs = append(objs, newCustomer(ns, fmt.Sprintf("cus-%d", i)),
			newSubscription(ns, fmt.Sprintf("sub-%d", i), fmt.Sprintf("cus-%d", i), "monthly"))
	}
	for _, o := range objs {
		create(t, o)
	}
	kinds := map[string]string{"Customer": "customer", "Product": "product", "Price": "price",
		"Subscription": "subscription", "Coupon": "coupon", "PromotionCode": "promotion_code", "TaxRate": "tax_rate",
		"BillingPortalConfiguration": "billing_portal.configuration"}
	for _, o := range objs {
		o = waitReady(t, ctx, o)
		kind := kinds[fmt.Sprintf("%T", o)[len("*v1."):]]
		if n := sim.ObjectsByUID()[kind][string(o.GetUID())]; n != 1 {
			t.Errorf("%s %s: %d Stripe objects, want exactly 1", kind, o.GetName(), n)
		}
	}
}

func TestPriceAdoptByLookupKeyAndDeletionPolicies(t *testing.T) {
	ctx, ns := newNamespace(t)
	prod := newProduct(ns, "plan")
	create(t, prod)
	prod = waitReady(t, ctx, prod)
	existing, err := simClient().API.Prices.New(&stripego.PriceParams{Product: stripego.String(prod.Status.ID),
		Currency: stripego.String("usd"), UnitAmount: stripego.Int64(900), LookupKey: stripego.String(ns + "-legacy"),
		Recurring: &stripego.PriceRecurringParams{Interval: stripego.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	adopted := newPrice(ns, "legacy", 900)
	adopted.Spec.Adopt = &billingv1.PriceAdopt{LookupKey: ns + "-legacy"}
	adopted.Spec.DeletionPolicy = billingv1.Orphan
	archived := newPrice(ns, "archived", 100)
	create(t, adopted, archived)
	adopted = waitReady(t, ctx, adopted)
	if adopted.Status.ID != existing.ID {
		t.Fatalf("adopted %s, want %s", adopted.Status.ID, existing.ID)
	}
	if got := stripePrice(t, existing.ID); got.Metadata["k8s_uid"] != string(adopted.UID) {
		t.Errorf("the adopted price was not stamped: %v", got.Metadata)
	}
	archived = waitReady(t, ctx, archived)
	// The archived price is the product's default: deletion must unset that first.
	if _, err := simClient().API.Products.Update(prod.Status.ID,
		&stripego.ProductParams{DefaultPrice: stripego.String(archived.Status.ID)}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{adopted, archived} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		waitGone(t, ctx, o)
	}
	if got := stripePrice(t, existing.ID); !got.Active {
		t.Error("Orphan archived the price")
	}
	if got := stripePrice(t, archived.Status.ID); got.Active {
		t.Error("Archive left the price active")
	}

	// Product Orphan leaves the product active.
	orphan := newProduct(ns, "kept")
	orphan.Spec.DeletionPolicy = billingv1.Orphan
	create(t, orphan)
	orphan = waitReady(t, ctx, orphan)
	if err := env.Client.Delete(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, orphan)
	if got, _ := simClient().API.Products.Get(orphan.Status.ID, nil); !got.Active {
		t.Error("Orphan archived the product")
	}
}

// A rollover whose last steps fail is finished on a later pass: the old price is archived, the successor is not
// created twice, and status moves to the successor only when all is done.
func TestPriceRolloverFinishesAfterErrors(t *testing.T) {
	ctx, ns := newNamespace(t)
	create(t, newProduct(ns, "plan"))
	price := newPrice(ns, "monthly", 1000)
	create(t, price)
	price = waitReady(t, ctx, price)
	oldID := price.Status.ID
	f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultError, Method: "POST", Path: "/v1/prices/" + oldID,
		Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.RemoveFault(f.ID) })
	price.Spec.UnitAmount = 1200
	if err := env.Client.Update(ctx, price); err != nil {
		t.Fatal(err)
	}
	price = waitReady(t, ctx, price)
	if faultFired(f.ID) != 3 {
		t.Errorf("the archive failed %d times, want 3", faultFired(f.ID))
	}
	if price.Status.ID == oldID || len(price.Status.PreviousIDs) != 1 || price.Status.PreviousIDs[0] != oldID {
		t.Errorf("status after the rollover: %+v", price.Status)
	}
	if stripePrice(t, oldID).Active {
		t.Error("the old price is still active")
	}
	if n := sim.ObjectsByUID()["price"][string(price.UID)]; n != 2 {
		t.Errorf("%d Stripe prices, want the original and one successor", n)
	}
}

// A declined first payment under error_if_incomplete is a card error: Stalled with reason PaymentFailed and the
// decline in the message, and no subscription in Stripe.
func TestCardErrorOnCreateIsPaymentFailed(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "declined")
	cus.Spec.DefaultPaymentMethod = "pm_card_chargeDeclinedInsufficientFunds"
	sub := newSubscription(ns, "strict", "declined", "monthly")
	sub.Spec.PaymentBehavior = billingv1.ErrorIfIncomplete
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 500), cus, sub)
	cond := waitReason(t, ctx, sub, billingv1.ReasonPaymentFailed)
	if !strings.Contains(cond.Message, "insufficient funds") {
		t.Errorf("message %q does not say why", cond.Message)
	}
	assertStalled(t, sub)
	if n := sim.ObjectsByUID()["subscription"][string(sub.UID)]; n != 0 {
		t.Errorf("%d Stripe subscriptions after a refused payment", n)
	}
}
