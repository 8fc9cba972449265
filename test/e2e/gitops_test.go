package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// billingWrites counts the writes stripesim answered on the billing kinds' endpoints (its admin API's statistics).
func billingWrites(t *testing.T) int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, dev["STRIPESIM_URL"]+"/_sim/stats",
		nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var stats struct {
		Requests map[string]map[string]int64 `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	var n int64
	for pattern, byStatus := range stats.Requests {
		for _, prefix := range []string{"POST /v1/customers", "POST /v1/products", "POST /v1/prices",
			"POST /v1/subscriptions", "DELETE /v1/"} {
			if strings.HasPrefix(pattern, prefix) {
				for _, c := range byStatus {
					n += c
				}
			}
		}
	}
	return n
}

// catalog is a Product and one Price with a lookup key, labelled for kubectl apply --prune, as Argo CD and Flux
// apply a directory: an object no longer in it is deleted by the same apply.
func catalog(ns, price string) string {
	return fmt.Sprintf(`
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: pro, labels: {catalog: %[1]s}}
spec: {name: Pro}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: %[2]s, labels: {catalog: %[1]s}}
spec:
  productRef: {name: pro}
  currency: usd
  unitAmount: 2000
  recurring: {interval: month}
  lookupKey: %[1]s-pro-monthly
`, ns, price)
}

// A Price renamed in git: one kubectl apply --prune creates the new Price and deletes the old one. The new Price
// takes the lookup key over, and the product's default price follows it.
func TestGitOpsPriceRename(t *testing.T) {
	ns := namespace(t)
	apply(t, ns, catalog(ns, "pro-monthly"))
	k(t, "wait", ready, "--timeout=120s", "-n", ns, "product/pro", "price/pro-monthly")
	oldID := get(t, ns, "price/pro-monthly", "{.status.id}")
	prod := get(t, ns, "product/pro", "{.status.id}")
	stripe(t, "POST", "/v1/products/"+prod, url.Values{"default_price": {oldID}})

	if _, err := kc(catalog(ns, "pro-monthly-v2"), "apply", "-n", ns, "--prune", "-l", "catalog="+ns,
		"--prune-allowlist=billing.stripe-operator.io/v1/Price", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	k(t, "wait", ready, "--timeout=120s", "-n", ns, "price/pro-monthly-v2")
	k(t, "wait", "--for=delete", "--timeout=60s", "-n", ns, "price/pro-monthly")
	newID := get(t, ns, "price/pro-monthly-v2", "{.status.id}")
	key := ns + "-pro-monthly"
	if p := stripe(t, "GET", "/v1/prices/"+newID, nil); p["lookup_key"] != key || p["active"] != true {
		t.Errorf("the new price: %v", p)
	}
	if p := stripe(t, "GET", "/v1/prices/"+oldID, nil); p["lookup_key"] != nil || p["active"] != false {
		t.Errorf("the old price: lookup_key %v, active %v", p["lookup_key"], p["active"])
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if d := field(stripe(t, "GET", "/v1/products/"+prod, nil), "default_price"); d != newID {
			return fmt.Errorf("the product's default price is %v, want %s", d, newID)
		}
		return nil
	})
}

// Moving an existing Stripe account under GitOps: adopt with managementPolicy Observe, read status.drift, fix the
// YAML until InSync, switch to Manage, which writes what is left, one update per object.
func TestGitOpsObserveThenManage(t *testing.T) {
	ns := namespace(t)
	cus := stripe(t, "POST", "/v1/customers", url.Values{"email": {"old@" + ns + ".example"}, "name": {"Old name"}})
	prod := stripe(t, "POST", "/v1/products", url.Values{"name": {"Legacy"}, "description": {"old"}})
	manifest := func(email, description, policy string) string {
		return fmt.Sprintf(`
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: legacy}
spec:
  managementPolicy: %[5]s
  adopt: {id: %[1]s}
  email: %[3]s
  name: Old name
---
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: legacy}
spec:
  managementPolicy: %[5]s
  adopt: {id: %[2]s}
  name: Legacy
  description: %[4]s
`, cus["id"], prod["id"], email, description, policy)
	}
	before := billingWrites(t)
	apply(t, ns, manifest("billing@"+ns+".example", "Everything", "Observe"))
	k(t, "wait", "--for=condition=InSync=False", "--timeout=60s", "-n", ns, "customer/legacy", "product/legacy")
	k(t, "wait", ready, "--timeout=60s", "-n", ns, "customer/legacy", "product/legacy")
	if got := get(t, ns, "customer/legacy", "{.status.drift}"); got != fmt.Sprintf(
		`[{"field":"email","spec":"billing@%[1]s.example","stripe":"old@%[1]s.example"}]`, ns) {
		t.Errorf("the customer's drift: %s", got)
	}
	if got := get(t, ns, "product/legacy", `{.status.conditions[?(@.type=="Ready")].reason}`); got != "Observed" {
		t.Errorf("the product's Ready reason: %s", got)
	}
	// The YAML is fixed for the product; the customer's email is the one change to make.
	apply(t, ns, manifest("billing@"+ns+".example", "old", "Observe"))
	k(t, "wait", "--for=condition=InSync=True", "--timeout=60s", "-n", ns, "product/legacy")
	if n := billingWrites(t) - before; n != 0 {
		t.Fatalf("%d Stripe writes while observing", n)
	}

	apply(t, ns, manifest("billing@"+ns+".example", "old", "Manage"))
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, obj := range []string{"customer/legacy", "product/legacy"} {
			if r := get(t, ns, obj, `{.status.conditions[?(@.type=="Ready")].reason}`); r != "Synced" {
				return fmt.Errorf("%s: Ready reason %s", obj, r)
			}
		}
		return nil
	})
	if got := stripe(t, "GET", "/v1/customers/"+cus["id"].(string), nil); got["email"] != "billing@"+ns+".example" {
		t.Errorf("the customer in Stripe after Manage: %v", got["email"])
	}
	if got := get(t, ns, "customer/legacy", "{.status.drift}"); got != "" {
		t.Errorf("drift remains when managed: %s", got)
	}
	// One update per object: the customer's email and both operator stamps.
	if n := billingWrites(t) - before; n != 2 {
		t.Errorf("%d Stripe writes for Manage, want 2", n)
	}
}
