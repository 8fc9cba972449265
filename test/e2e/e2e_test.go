package e2e

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

const ready = "--for=condition=Ready"

// The samples `make dev-up` applied become Ready; kubectl shows their Stripe columns, and the IDs are Stripe's.
func TestSamplesBecomeReady(t *testing.T) {
	k(t, "wait", ready, "--timeout=120s", "-n", "default",
		"customer/acme", "product/pro-plan", "price/pro-monthly", "subscription/acme-pro", "coupon/partner20",
		"promotioncode/launch", "taxrate/us-ca-sales-tax",
		"meter/api-calls", "price/api-calls-usage", "billingportalconfiguration/customer-portal")

	out := k(t, "get", "stripe", "-n", "default")
	for _, want := range []string{"STRIPE ID", "STRIPE STATUS", "PERIOD END", "AMOUNT", "trialing", "Synced",
		"billing@acme.example", "coupon.billing.stripe-operator.io/partner20", "PARTNER20", "PERCENT OFF",
		"promotioncode.billing.stripe-operator.io/launch", "LAUNCH2026",
		"taxrate.billing.stripe-operator.io/us-ca-sales-tax", "PERCENTAGE", "7.25",
		"meter.billing.stripe-operator.io/api-calls", "EVENT NAME", "api_call",
		"billingportalconfiguration.billing.stripe-operator.io/customer-portal"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get stripe lacks %q:\n%s", want, out)
		}
	}
	cus := get(t, "default", "customer/acme", "{.status.id}")
	if !strings.Contains(out, cus) {
		t.Errorf("kubectl get stripe lacks the customer's ID %s:\n%s", cus, out)
	}
	if got := stripe(t, "GET", "/v1/customers/"+cus, nil); got["email"] != "billing@acme.example" ||
		field(got, "metadata", "tenant") != "acme" {
		t.Errorf("Stripe's customer %s: %v", cus, got)
	}
	sub := get(t, "default", "subscription/acme-pro", "{.status.id}")
	got := stripe(t, "GET", "/v1/subscriptions/"+sub, nil)
	if got["status"] != "trialing" || field(got, "items", "data", 0, "quantity") != 3.0 ||
		field(got, "items", "data", 0, "price", "id") != get(t, "default", "price/pro-monthly", "{.status.id}") ||
		field(got, "default_tax_rates", 0, "id") != get(t, "default", "taxrate/us-ca-sales-tax", "{.status.id}") {
		t.Errorf("Stripe's subscription %s: %v", sub, got)
	}
	rate := stripe(t, "GET", "/v1/tax_rates/"+get(t, "default", "taxrate/us-ca-sales-tax", "{.status.id}"), nil)
	if rate["percentage"] != 7.25 || rate["inclusive"] != false || rate["state"] != "CA" {
		t.Errorf("Stripe's tax rate: %v", rate)
	}
	// The sample subscription redeems the sample coupon; the promotion code is live in Stripe.
	if field(got, "discount", "coupon", "id") != "PARTNER20" ||
		get(t, "default", "subscription/acme-pro", "{.status.discount.percentOff}") != "20" {
		t.Errorf("the subscription's discount: Stripe %v", got["discount"])
	}
	promo := stripe(t, "GET", "/v1/promotion_codes/"+get(t, "default", "promotioncode/launch", "{.status.id}"), nil)
	if promo["code"] != "LAUNCH2026" || promo["active"] != true || field(promo, "coupon", "id") != "PARTNER20" {
		t.Errorf("Stripe's promotion code: %v", promo)
	}

	// The operator's own metadata writes (the finalizer, the pending-create record) kept kubectl's last-applied
	// configuration, which its cache does not hold: a later kubectl apply still computes its three-way merge.
	for _, o := range []string{"customer/acme", "subscription/acme-pro"} {
		if f := get(t, "default", o, "{.metadata.finalizers}"); !strings.Contains(f, "billing.stripe-operator.io") {
			t.Errorf("%s has no finalizer: %s", o, f)
		}
		last := get(t, "default", o, `{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`)
		if !strings.Contains(last, `"spec"`) {
			t.Errorf("%s lost its last-applied configuration: %q", o, last)
		}
	}

	// kubectl describe shows the operator's Events; the webhook path delivered the subscription's events.
	desc := k(t, "describe", "-n", "default", "subscription/acme-pro")
	if !strings.Contains(desc, "Events:") || !strings.Contains(desc, "Synced") {
		t.Errorf("kubectl describe shows no Synced event:\n%s", desc)
	}
	// Processed events leave their StripeEvent for an entry in the event ledger, naming the object they concerned
	// (the subscription's first invoice; the operator does not register for the creations of what it creates).
	testenv.Eventually(t, 30*time.Second, func() error {
		recorded := k(t, "get", "stripeeventledgers", "-n", "stripe-operator-system", "-o", "jsonpath={.items[*].events}")
		for _, want := range []string{"Subscription/default/acme-pro"} {
			if !strings.Contains(recorded, want) {
				return fmt.Errorf("no processed event of %s in the event ledger:\n%s", want, recorded)
			}
		}
		return nil
	})
}

const rolloverObjects = `
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: seats}
spec: {name: Seats}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: seat}
spec:
  productRef: {name: seats}
  currency: eur
  unitAmount: 1000
  recurring: {interval: month}
---
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: keeper}
spec: {email: keeper@example.com, defaultPaymentMethod: pm_card_visa}
---
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: mover}
spec: {email: mover@example.com, defaultPaymentMethod: pm_card_visa}
---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: keep}
spec:
  customerRef: {name: keeper}
  items: [{priceRef: {name: seat}, quantity: 2}]
  priceChangePolicy: Keep
---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: migrate}
spec:
  customerRef: {name: mover}
  items: [{priceRef: {name: seat}, quantity: 2}]
  priceChangePolicy: Migrate
`

// Editing a Price's amount rolls it to a new Stripe price: a Keep subscription stays on the old one, a Migrate one
// moves to the new one, in the CR's status and in Stripe.
func TestPriceRollover(t *testing.T) {
	ns := namespace(t)
	apply(t, ns, rolloverObjects)
	k(t, "wait", ready, "--timeout=120s", "-n", ns, "subscription/keep", "subscription/migrate")
	old := get(t, ns, "price/seat", "{.status.id}")

	k(t, "patch", "-n", ns, "price/seat", "--type=merge", "-p", `{"spec":{"unitAmount":1500}}`)
	var successor string
	testenv.Eventually(t, 60*time.Second, func() error {
		successor = get(t, ns, "price/seat", "{.status.id}")
		if successor == old || get(t, ns, "price/seat", `{.status.conditions[?(@.type=="Ready")].status}`) != "True" {
			return fmt.Errorf("price still %s", successor)
		}
		return nil
	})
	if p := stripe(t, "GET", "/v1/prices/"+successor, nil); p["unit_amount"] != 1500.0 || p["currency"] != "eur" {
		t.Errorf("the successor price in Stripe: %v", p)
	}
	if prev := get(t, ns, "price/seat", "{.status.previousIDs}"); !strings.Contains(prev, old) {
		t.Errorf("status.previousIDs %s lacks %s", prev, old)
	}
	for sub, want := range map[string]string{"keep": old, "migrate": successor} {
		testenv.Eventually(t, 60*time.Second, func() error {
			if got := get(t, ns, "subscription/"+sub, "{.status.items[0].priceID}"); got != want {
				return fmt.Errorf("subscription %s status on price %s, want %s", sub, got, want)
			}
			id := get(t, ns, "subscription/"+sub, "{.status.id}")
			s := stripe(t, "GET", "/v1/subscriptions/"+id, nil)
			if got := field(s, "items", "data", 0, "price", "id"); got != want {
				return fmt.Errorf("subscription %s in Stripe on price %v, want %s", sub, got, want)
			}
			if q := field(s, "items", "data", 0, "quantity"); q != 2.0 {
				return fmt.Errorf("subscription %s quantity %v", sub, q)
			}
			return nil
		})
	}
}

// A subscription on a test clock: the renewal fails on a declined card (PaymentFailed, past_due, a Warning Event),
// and after the card is fixed Stripe's retry pays it (PaymentFailed False, active).
func TestPaymentFailureAndRecovery(t *testing.T) {
	ns := namespace(t)
	clock := stripe(t, "POST", "/v1/test_helpers/test_clocks", url.Values{"frozen_time": {"1700000000"}})["id"].(string)
	apply(t, ns, fmt.Sprintf(`
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: plan}
spec: {name: Plan}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: monthly}
spec: {productRef: {name: plan}, currency: usd, unitAmount: 4200, recurring: {interval: month}}
---
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: payer}
spec: {email: payer@example.com, defaultPaymentMethod: pm_card_visa, testClock: %s}
---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: plan}
spec:
  customerRef: {name: payer}
  items: [{priceRef: {name: monthly}}]
`, clock))
	k(t, "wait", ready, "--timeout=120s", "-n", ns, "subscription/plan")
	if s := get(t, ns, "subscription/plan", "{.status.stripeStatus}"); s != "active" {
		t.Fatalf("new subscription %s", s)
	}
	setCard := func(pm string) {
		k(t, "patch", "-n", ns, "customer/payer", "--type=merge", "-p", `{"spec":{"defaultPaymentMethod":"`+pm+`"}}`)
		gen := get(t, ns, "customer/payer", "{.metadata.generation}")
		k(t, "wait", "--for=jsonpath={.status.observedGeneration}="+gen, "--timeout=60s", "-n", ns, "customer/payer")
		k(t, "wait", ready, "--timeout=60s", "-n", ns, "customer/payer")
	}
	advance := func(to int64) {
		stripe(t, "POST", "/v1/test_helpers/test_clocks/"+clock+"/advance",
			url.Values{"frozen_time": {strconv.FormatInt(to, 10)}})
	}
	end, err := time.Parse(time.RFC3339, get(t, ns, "subscription/plan", "{.status.currentPeriodEnd}"))
	if err != nil {
		t.Fatal(err)
	}

	setCard("pm_card_chargeDeclinedInsufficientFunds")
	advance(end.Unix() + 3600)
	k(t, "wait", "--for=condition=PaymentFailed", "--timeout=60s", "-n", ns, "subscription/plan")
	// The subscription's state comes with its own event (customer.subscription.updated), folded beside the
	// invoice's.
	k(t, "wait", "--for=jsonpath={.status.stripeStatus}=past_due", "--timeout=60s", "-n", ns, "subscription/plan")
	msg := get(t, ns, "subscription/plan", `{.status.conditions[?(@.type=="PaymentFailed")].message}`)
	if !strings.Contains(msg, "insufficient funds") {
		t.Errorf("PaymentFailed message %q", msg)
	}
	if desc := k(t, "describe", "-n", ns, "subscription/plan"); !strings.Contains(desc, "PaymentFailed") ||
		!strings.Contains(desc, "Warning") {
		t.Errorf("kubectl describe shows no PaymentFailed warning:\n%s", desc)
	}

	setCard("pm_card_visa")
	advance(end.Unix() + 3*86400)
	k(t, "wait", "--for=condition=PaymentFailed=False", "--timeout=60s", "-n", ns, "subscription/plan")
	k(t, "wait", "--for=jsonpath={.status.stripeStatus}=active", "--timeout=60s", "-n", ns, "subscription/plan")
	id := get(t, ns, "subscription/plan", "{.status.id}")
	if s := stripe(t, "GET", "/v1/subscriptions/"+id, nil); s["status"] != "active" {
		t.Errorf("Stripe's subscription after the retry: %v", s["status"])
	}
	if inv := get(t, ns, "subscription/plan", "{.status.latestInvoice.status}"); inv != "paid" {
		t.Errorf("latest invoice %s", inv)
	}
}

// Deleting each kind under each deletion policy leaves in Stripe exactly what the policy says.
func TestDeletionPolicies(t *testing.T) {
	ns := namespace(t)
	var b strings.Builder
	customer := func(name, policy string) {
		fmt.Fprintf(&b, `---
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: %s}
spec: {email: %s@example.com, defaultPaymentMethod: pm_card_visa, deletionPolicy: %s}
`, name, name, policy)
	}
	customer("cus-orphan", "Orphan")
	customer("cus-delete", "Delete")
	for _, policy := range []string{"Archive", "Orphan"} {
		name := strings.ToLower(policy)
		fmt.Fprintf(&b, `---
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: prod-%[1]s}
spec: {name: %[1]s, deletionPolicy: %[2]s}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: price-%[1]s}
spec: {productRef: {name: prod-%[1]s}, currency: usd, unitAmount: 500, recurring: {interval: month}, deletionPolicy: %[2]s}
`, name, policy)
	}
	for _, policy := range []string{"Cancel", "CancelAtPeriodEnd", "Orphan"} {
		name := strings.ToLower(policy)
		customer("payer-"+name, "Orphan")
		fmt.Fprintf(&b, `---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: sub-%[1]s}
spec:
  customerRef: {name: payer-%[1]s}
  items: [{priceRef: {name: price-orphan}}]
  deletionPolicy: %[2]s
`, name, policy)
	}
	for _, policy := range []string{"Delete", "Orphan"} {
		fmt.Fprintf(&b, `---
apiVersion: billing.stripe-operator.io/v1
kind: Coupon
metadata: {name: cpn-%s}
spec: {percentOff: 15, duration: forever, deletionPolicy: %s}
`, strings.ToLower(policy), policy)
	}
	for _, policy := range []string{"Deactivate", "Orphan"} {
		fmt.Fprintf(&b, `---
apiVersion: billing.stripe-operator.io/v1
kind: PromotionCode
metadata: {name: promo-%[1]s}
spec: {couponRef: {name: cpn-orphan}, code: E2E%[2]s, deletionPolicy: %[2]s}
`, strings.ToLower(policy), policy)
	}
	apply(t, ns, b.String())
	objects := []string{"customer/cus-orphan", "customer/cus-delete", "product/prod-archive", "product/prod-orphan",
		"price/price-archive", "price/price-orphan", "subscription/sub-cancel", "subscription/sub-cancelatperiodend",
		"subscription/sub-orphan", "coupon/cpn-delete", "coupon/cpn-orphan", "promotioncode/promo-deactivate",
		"promotioncode/promo-orphan"}
	k(t, append([]string{"wait", ready, "--timeout=120s", "-n", ns}, objects...)...)
	ids := map[string]string{}
	for _, o := range objects {
		ids[o] = get(t, ns, o, "{.status.id}")
	}

	// Subscriptions first, then promotion codes, coupons, prices, products and customers, as a user tearing a tenant
	// down would.
	for _, kind := range []string{"subscription", "promotioncode", "coupon", "price", "product", "customer"} {
		k(t, "delete", "-n", ns, kind, "--all", "--timeout=60s")
	}
	if left := k(t, "get", "-n", ns, "stripe", "-o", "name"); strings.TrimSpace(left) != "" {
		t.Fatalf("objects left after deletion: %s", left)
	}

	checks := []struct {
		obj, path string
		want      map[string]any
	}{
		{"customer/cus-orphan", "/v1/customers/", map[string]any{"deleted": nil}},
		{"customer/cus-delete", "/v1/customers/", map[string]any{"deleted": true}},
		{"product/prod-archive", "/v1/products/", map[string]any{"active": false}},
		{"product/prod-orphan", "/v1/products/", map[string]any{"active": true}},
		{"price/price-archive", "/v1/prices/", map[string]any{"active": false}},
		{"price/price-orphan", "/v1/prices/", map[string]any{"active": true}},
		{"subscription/sub-cancel", "/v1/subscriptions/", map[string]any{"status": "canceled"}},
		{"subscription/sub-cancelatperiodend", "/v1/subscriptions/",
			map[string]any{"status": "active", "cancel_at_period_end": true}},
		{"subscription/sub-orphan", "/v1/subscriptions/",
			map[string]any{"status": "active", "cancel_at_period_end": false}},
		{"coupon/cpn-orphan", "/v1/coupons/", map[string]any{"valid": true}},
		{"promotioncode/promo-deactivate", "/v1/promotion_codes/", map[string]any{"active": false}},
		{"promotioncode/promo-orphan", "/v1/promotion_codes/", map[string]any{"active": true}},
	}
	for _, c := range checks {
		got := stripe(t, "GET", c.path+ids[c.obj], nil)
		for f, want := range c.want {
			if got[f] != want {
				t.Errorf("%s (%s) after deletion: %s = %v, want %v", c.obj, ids[c.obj], f, got[f], want)
			}
		}
	}
	// A deleted coupon is gone from Stripe's list.
	for _, c := range field(stripe(t, "GET", "/v1/coupons?limit=100", nil), "data").([]any) {
		if field(c, "id") == ids["coupon/cpn-delete"] {
			t.Errorf("coupon/cpn-delete (%s) is still in Stripe after deletion", ids["coupon/cpn-delete"])
		}
	}
}

// A bad object is refused by the API server with a message that says what is wrong, and nothing reaches Stripe.
func TestBadObjectIsRefused(t *testing.T) {
	ns := namespace(t)
	cases := []struct{ manifest, want string }{
		{`
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: shouting}
spec: {productID: prod_x, currency: USD, unitAmount: 100}
`, "spec.currency"},
		{`
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: nobody}
spec: {items: [{priceID: price_x}]}
`, "customer"},
		{`
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: reserved}
spec: {email: a@example.com, metadata: {k8s_uid: x}}
`, "k8s_"},
	}
	for _, c := range cases {
		_, err := kc(c.manifest, "apply", "-n", ns, "-f", "-")
		if err == nil {
			t.Errorf("accepted:\n%s", c.manifest)
			continue
		}
		if !strings.Contains(err.Error(), "is invalid") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("refusal does not name %q: %v", c.want, err)
		}
	}
	if left := k(t, "get", "-n", ns, "stripe", "-o", "name"); strings.TrimSpace(left) != "" {
		t.Errorf("refused objects exist: %s", left)
	}
}
