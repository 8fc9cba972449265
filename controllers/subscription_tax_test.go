package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// waitEventsProcessed waits until the stored events of the given type prefix about objectID (a tax rate, or a
// customer's tax ID routed to its customer) are Processed, folded into a billing object of kind target.
func waitEventsProcessed(t *testing.T, prefix, target string, objectID string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		l := &billingv1.StripeEventList{}
		if err := env.Client.List(t.Context(), l, client.InNamespace(operatorNamespace)); err != nil {
			return err
		}
		n := 0
		for _, ev := range l.Items {
			if !strings.HasPrefix(ev.Spec.Type, prefix) || ev.Spec.ObjectID != objectID {
				continue
			}
			n++
			if ev.Status.Phase != billingv1.EventProcessed || ev.Status.Target == nil ||
				ev.Status.Target.Kind != target {
				return fmt.Errorf("event %s %s: %s %q target %+v", ev.Spec.EventID, ev.Spec.Type, ev.Status.Phase,
					ev.Status.Message, ev.Status.Target)
			}
		}
		if n == 0 {
			return fmt.Errorf("no %s event of %s stored", prefix, objectID)
		}
		return nil
	})
}

func taxRateRef(name string) billingv1.TaxRateReference {
	return billingv1.TaxRateReference{TaxRateRef: &billingv1.LocalObjectReference{Name: name}}
}

// latestStripeInvoice is the newest invoice of a Stripe subscription.
func latestStripeInvoice(t *testing.T, subID string) *stripego.Invoice {
	t.Helper()
	p := &stripego.InvoiceListParams{Subscription: stripego.String(subID)}
	p.Limit = stripego.Int64(1)
	p.Single = true
	it := simClient().API.Invoices.List(p)
	if !it.Next() {
		t.Fatalf("no invoice of %s: %v", subID, it.Err())
	}
	return it.Invoice()
}

// A TaxRate rolled while two Subscriptions use it, one as a default tax rate and one on an item: both move to the
// successor, their next invoice (a renewal, on a test clock) is taxed at the new rate, the old rate is archived, and
// the subscriptions' status shows the latest invoice's tax. A tax rate given by Stripe ID is applied as it is, and
// removing the default tax rates clears them in Stripe.
func TestTaxRateRollMovesSubscriptions(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sc := simClient()
	clock, err := sc.API.TestHelpersTestClocks.New(&stripego.TestHelpersTestClockParams{
		FrozenTime: stripego.Int64(1_700_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	cus := newCustomer(ns, "taxpayer")
	cus.Spec.TestClock = clock.ID
	vat := newTaxRate(ns, "vat", "19")
	byDefault := newSubscription(ns, "by-default", "taxpayer", "monthly")
	byDefault.Spec.DefaultTaxRates = []billingv1.TaxRateReference{taxRateRef("vat")}
	byItem := newSubscription(ns, "by-item", "taxpayer", "monthly")
	byItem.Spec.Items[0].TaxRates = []billingv1.TaxRateReference{taxRateRef("vat")}
	price := newPrice(ns, "monthly", 1000)
	create(t, newProduct(ns, "plan"), price, cus)
	waitReady(t, ctx, price)
	waitReady(t, ctx, cus)
	// The subscriptions wait for the tax rate like they wait for their customer and prices.
	create(t, byDefault, byItem)
	if c := waitReason(t, ctx, byDefault, billingv1.ReasonDependencyNotReady); !strings.Contains(c.Message,
		"TaxRate "+ns+"/vat does not exist") {
		t.Errorf("waiting for the TaxRate: %s", c.Message)
	}
	create(t, vat)
	vat = waitReady(t, ctx, vat)
	oldID := vat.Status.ID
	byDefault = waitReady(t, ctx, byDefault)
	byItem = waitReady(t, ctx, byItem)
	if !slices.Equal(byDefault.Status.DefaultTaxRateIDs, []string{oldID}) ||
		!slices.Equal(byItem.Status.Items[0].TaxRateIDs, []string{oldID}) {
		t.Fatalf("tax rates in status: %v, %+v", byDefault.Status.DefaultTaxRateIDs, byItem.Status.Items)
	}
	for _, s := range []*billingv1.Subscription{byDefault, byItem} {
		if in := s.Status.LatestInvoice; in == nil || in.Tax == nil || *in.Tax != 190 || in.AmountDue != 1190 {
			t.Fatalf("%s: latest invoice %+v, want 1.90 tax on 10.00", s.Name, in)
		}
	}

	if err := updateSpec(vat, func(r *billingv1.TaxRate) { r.Spec.Percentage = "21" }); err != nil {
		t.Fatal(err)
	}
	vat = waitReady(t, ctx, vat)
	newID := vat.Status.ID
	if newID == oldID || !slices.Equal(vat.Status.PreviousIDs, []string{oldID}) {
		t.Fatalf("no roll: %+v", vat.Status)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		d, i := stripeSubscription(t, byDefault.Status.ID), stripeSubscription(t, byItem.Status.ID)
		if got := taxRateIDs(d.DefaultTaxRates); !slices.Equal(got, []string{newID}) {
			return fmt.Errorf("default tax rates still %v", got)
		}
		if got := taxRateIDs(i.Items.Data[0].TaxRates); !slices.Equal(got, []string{newID}) {
			return fmt.Errorf("item tax rates still %v", got)
		}
		return nil
	})
	if stripeTaxRate(t, oldID).Active {
		t.Error("the old tax rate is still active")
	}
	// The old rate's archive (tax_rate.updated) reaches the TaxRate (creations are not delivered: the operator does
	// not register for them).
	waitEventsProcessed(t, "tax_rate.", kindTaxRate, oldID)
	// The invoice already issued keeps the old rate; the next one carries the new rate.
	if in := latestStripeInvoice(t, byDefault.Status.ID); in.TotalTaxAmounts[0].TaxRate.ID != oldID {
		t.Errorf("the issued invoice changed its tax rate to %s", in.TotalTaxAmounts[0].TaxRate.ID)
	}
	if _, err := sc.API.TestHelpersTestClocks.Advance(clock.ID, &stripego.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripego.Int64(byDefault.Status.CurrentPeriodEnd.Unix() + 3600)}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*billingv1.Subscription{byDefault, byItem} {
		testenv.Eventually(t, 30*time.Second, func() error {
			in := latestStripeInvoice(t, s.Status.ID)
			if in.BillingReason != stripego.InvoiceBillingReasonSubscriptionCycle || len(in.TotalTaxAmounts) != 1 ||
				in.TotalTaxAmounts[0].TaxRate.ID != newID || in.Tax != 210 || in.Total != 1210 {
				return fmt.Errorf("%s: renewal invoice %s (%s) tax %d total %d", s.Name, in.ID, in.BillingReason,
					in.Tax, in.Total)
			}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
				return err
			}
			if got := s.Status.LatestInvoice; got == nil || got.ID != in.ID || got.Tax == nil || *got.Tax != 210 {
				return fmt.Errorf("%s: status.latestInvoice %+v, want %s with 2.10 tax", s.Name, got, in.ID)
			}
			return nil
		})
	}

	taxRateByIDThenNone(t, byDefault, newID)
}

// taxRateByIDThenNone adds a tax rate by Stripe ID to the subscription's defaults, then removes them all.
func taxRateByIDThenNone(t *testing.T, byDefault *billingv1.Subscription, vatID string) {
	t.Helper()
	ctx := t.Context()
	sc := simClient()
	// A tax rate by Stripe ID, then none at all.
	outside, err := sc.API.TaxRates.New(&stripego.TaxRateParams{DisplayName: stripego.String("City tax"),
		Percentage: stripego.Float64(2), Inclusive: stripego.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if err := updateSpec(byDefault, func(s *billingv1.Subscription) {
		s.Spec.DefaultTaxRates = []billingv1.TaxRateReference{taxRateRef("vat"), {TaxRateID: outside.ID}}
	}); err != nil {
		t.Fatal(err)
	}
	byDefault = waitReady(t, ctx, byDefault)
	if got := taxRateIDs(stripeSubscription(t, byDefault.Status.ID).DefaultTaxRates); !slices.Equal(got,
		[]string{vatID, outside.ID}) {
		t.Errorf("default tax rates with an ID: %v", got)
	}
	if err := updateSpec(byDefault, func(s *billingv1.Subscription) { s.Spec.DefaultTaxRates = nil }); err != nil {
		t.Fatal(err)
	}
	byDefault = waitReady(t, ctx, byDefault)
	if got := stripeSubscription(t, byDefault.Status.ID).DefaultTaxRates; len(got) != 0 ||
		len(byDefault.Status.DefaultTaxRateIDs) != 0 {
		t.Errorf("default tax rates after removing them: %v, status %v", taxRateIDs(got),
			byDefault.Status.DefaultTaxRateIDs)
	}
}

// The API server refuses a tax rate named twice, one with both a reference and an ID, and more than five.
func TestSubscriptionTaxRatesSchema(t *testing.T) {
	ctx, ns := newNamespace(t)
	both := billingv1.TaxRateReference{TaxRateRef: &billingv1.LocalObjectReference{Name: "a"}, TaxRateID: "txr_a"}
	six := make([]billingv1.TaxRateReference, 0, 6)
	for i := range 6 {
		six = append(six, taxRateRef(fmt.Sprint("r", i)))
	}
	for _, tc := range []struct {
		mutate func(*billingv1.Subscription)
		want   string
	}{
		{func(s *billingv1.Subscription) {
			s.Spec.DefaultTaxRates = []billingv1.TaxRateReference{taxRateRef("vat"), taxRateRef("vat")}
		}, "each tax rate may appear only once in defaultTaxRates"},
		{func(s *billingv1.Subscription) {
			s.Spec.Items[0].TaxRates = []billingv1.TaxRateReference{{TaxRateID: "txr_1"}, {TaxRateID: "txr_1"}}
		}, "each tax rate may appear only once in taxRates"},
		{func(s *billingv1.Subscription) { s.Spec.DefaultTaxRates = []billingv1.TaxRateReference{both} },
			"each tax rate needs exactly one of taxRateRef or taxRateID"},
		{func(s *billingv1.Subscription) { s.Spec.DefaultTaxRates = six }, "spec.defaultTaxRates"},
		{func(s *billingv1.Subscription) {
			s.Spec.Items[0].TaxRates = []billingv1.TaxRateReference{{TaxRateID: "vat"}}
		}, "spec.items[0].taxRates[0].taxRateID"},
	} {
		s := newSubscription(ns, "taxed", "cus", "monthly")
		s.Spec.Items[0].Quantity = ptr.To[int64](1)
		tc.mutate(s)
		if err := env.Client.Create(ctx, s, client.DryRunAll); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want a refusal naming %q, got %v", tc.want, err)
		}
	}
}

// A Subscription with a discount and default tax rates, in a trial: Stripe holds both (as the samples have them).
func TestSubscriptionDiscountAndTaxRates(t *testing.T) {
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "both", "cus", "monthly")
	sub.Spec.TrialPeriodDays = ptr.To[int64](14)
	sub.Spec.DefaultTaxRates = []billingv1.TaxRateReference{taxRateRef("vat")}
	sub.Spec.Discount = &billingv1.SubscriptionDiscount{CouponRef: &billingv1.LocalObjectReference{Name: "deal"}}
	create(t, newCustomer(ns, "cus"), newProduct(ns, "plan"), newPrice(ns, "monthly", 1000), newTaxRate(ns, "vat", "19"),
		newCoupon(ns, "deal"), sub)
	sub = waitReady(t, ctx, sub)
	s := stripeSubscription(t, sub.Status.ID)
	if got := taxRateIDs(s.DefaultTaxRates); len(got) != 1 || s.Discount == nil {
		t.Errorf("Stripe's subscription: tax rates %v, discount %+v", got, s.Discount)
	}
}
