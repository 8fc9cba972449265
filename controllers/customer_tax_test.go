package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// stripeTaxIDs are a Stripe customer's tax IDs as "type:value", sorted.
func stripeTaxIDs(t *testing.T, customerID string) []string {
	t.Helper()
	var out []string
	it := simClient().API.TaxIDs.List(&stripego.TaxIDListParams{Customer: stripego.String(customerID)})
	for it.Next() {
		out = append(out, string(it.TaxID().Type)+":"+it.TaxID().Value)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	slices.Sort(out)
	return out
}

// A Customer's tax status and tax IDs: created with the customer (one request), each tax ID's verification in
// status, a changed tax ID replaced (deleted and created, since Stripe cannot edit one), a tax ID added in Stripe
// outside the operator removed again (its event is drift), and a malformed value Stalled with Stripe's message.
func TestCustomerTaxExemptAndTaxIDs(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "vat-payer")
	cus.Spec.TaxExempt = billingv1.TaxExemptExempt
	cus.Spec.TaxIDs = []billingv1.CustomerTaxID{{Type: "eu_vat", Value: "DE000000000"},
		{Type: "us_ein", Value: "12-3456789"}}
	before := calls("POST /v1/customers/{customer}/tax_ids")
	create(t, cus)
	cus = waitReady(t, ctx, cus)
	got := stripeCustomer(t, cus.Status.ID)
	if got.TaxExempt != stripego.CustomerTaxExemptExempt {
		t.Errorf("tax_exempt %q", got.TaxExempt)
	}
	if ids := stripeTaxIDs(t, cus.Status.ID); !slices.Equal(ids, []string{"eu_vat:DE000000000", "us_ein:12-3456789"}) {
		t.Fatalf("Stripe tax IDs: %v", ids)
	}
	if n := calls("POST /v1/customers/{customer}/tax_ids") - before; n != 0 {
		t.Errorf("%d tax ID requests besides the customer's create", n)
	}
	verification := func(c *billingv1.Customer) map[string]string {
		out := map[string]string{}
		for _, s := range c.Status.TaxIDs {
			out[s.Type+":"+s.Value] = s.Verification + "/" + s.Country
		}
		return out
	}
	if v := verification(cus); v["eu_vat:DE000000000"] != "verified/DE" || v["us_ein:12-3456789"] != "unavailable/US" {
		t.Errorf("status tax IDs: %v", v)
	}

	if err := updateSpec(cus, func(c *billingv1.Customer) {
		c.Spec.TaxExempt = billingv1.TaxExemptReverse
		c.Spec.TaxIDs[1].Value = "98-7654321"
		c.Spec.TaxIDs = append(c.Spec.TaxIDs, billingv1.CustomerTaxID{Type: "au_abn", Value: "12345678912"})
	}); err != nil {
		t.Fatal(err)
	}
	cus = waitReady(t, ctx, cus)
	if ids := stripeTaxIDs(t, cus.Status.ID); !slices.Equal(ids, []string{"au_abn:12345678912", "eu_vat:DE000000000",
		"us_ein:98-7654321"}) {
		t.Errorf("after the update: %v", ids)
	}
	if got := stripeCustomer(t, cus.Status.ID); got.TaxExempt != stripego.CustomerTaxExemptReverse {
		t.Errorf("tax_exempt %q", got.TaxExempt)
	}
	if v := verification(cus); len(v) != 3 || v["au_abn:12345678912"] != "pending/AU" {
		t.Errorf("status tax IDs: %v", v)
	}

	// A tax ID added in the Dashboard: its event asks for a read, which removes it.
	outside, err := simClient().API.TaxIDs.New(&stripego.TaxIDParams{Customer: stripego.String(cus.Status.ID),
		Type: stripego.String("gb_vat"), Value: stripego.String("GB123456789")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if ids := stripeTaxIDs(t, cus.Status.ID); len(ids) != 3 || slices.Contains(ids, "gb_vat:GB123456789") {
			return fmt.Errorf("tax IDs %v", ids)
		}
		return nil
	})
	waitEventsProcessed(t, "customer.tax_id.", kindCustomer, outside.ID)

	bad := newCustomer(ns, "bad-vat")
	bad.Spec.TaxIDs = []billingv1.CustomerTaxID{{Type: "gb_vat", Value: "GB12"}}
	create(t, bad)
	if c := waitReason(t, ctx, bad, billingv1.ReasonInvalidRequest); !strings.Contains(c.Message,
		"Invalid value for gb_vat.") {
		t.Errorf("a malformed tax ID: %s", c.Message)
	}
}
