package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// A quantity changed in Stripe (as in the customer portal): the Restore subscription gets the spec's quantity back
// with a DriftDetected Warning; the Follow one keeps Stripe's, says SpecDiverged, and takes a later spec edit.
func TestChangesInStripe(t *testing.T) {
	ns := namespace(t)
	apply(t, ns, `
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: seats}
spec: {name: Seats}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: seat}
spec: {productRef: {name: seats}, currency: usd, unitAmount: 900, recurring: {interval: month}}
---
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: tenant}
spec: {email: tenant@example.com, defaultPaymentMethod: pm_card_visa}
---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: restore}
spec: {customerRef: {name: tenant}, items: [{priceRef: {name: seat}, quantity: 2}]}
---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: follow}
spec: {customerRef: {name: tenant}, items: [{priceRef: {name: seat}, quantity: 2}], changesInStripe: Follow}
`)
	k(t, "wait", ready, "--timeout=120s", "-n", ns, "subscription/restore", "subscription/follow")
	setQuantity := func(sub string, q string) string {
		id := get(t, ns, "subscription/"+sub, "{.status.id}")
		item := field(stripe(t, "GET", "/v1/subscriptions/"+id, nil), "items", "data", 0, "id").(string)
		stripe(t, "POST", "/v1/subscriptions/"+id, url.Values{"items[0][id]": {item}, "items[0][quantity]": {q}})
		return id
	}
	quantity := func(id string) any {
		return field(stripe(t, "GET", "/v1/subscriptions/"+id, nil), "items", "data", 0, "quantity")
	}

	restoreID := setQuantity("restore", "7")
	testenv.Eventually(t, 60*time.Second, func() error {
		if q := quantity(restoreID); q != 2.0 {
			return fmt.Errorf("Stripe quantity %v", q)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if ev := k(t, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=restore,reason=DriftDetected",
			"-o", "name"); strings.TrimSpace(ev) == "" {
			return fmt.Errorf("no DriftDetected event")
		}
		return nil
	})

	followID := setQuantity("follow", "7")
	k(t, "wait", "--for=condition=SpecDiverged", "--timeout=60s", "-n", ns, "subscription/follow")
	k(t, "wait", "--for=jsonpath={.status.items[0].quantity}=7", "--timeout=60s", "-n", ns, "subscription/follow")
	if q := quantity(followID); q != 7.0 {
		t.Errorf("the Follow subscription's quantity in Stripe is %v", q)
	}
	msg := get(t, ns, "subscription/follow", `{.status.conditions[?(@.type=="SpecDiverged")].message}`)
	if !strings.Contains(msg, "items") {
		t.Errorf("SpecDiverged message %q", msg)
	}

	k(t, "patch", "-n", ns, "subscription/follow", "--type=json", "-p",
		`[{"op":"replace","path":"/spec/items/0/quantity","value":5}]`)
	k(t, "wait", "--for=condition=SpecDiverged=False", "--timeout=60s", "-n", ns, "subscription/follow")
	if q := quantity(followID); q != 5.0 {
		t.Errorf("after the spec edit the quantity in Stripe is %v", q)
	}
}
