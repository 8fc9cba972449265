package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func newMeter(ns, name string) *billingv1.Meter {
	return &billingv1.Meter{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.MeterSpec{DisplayName: "API calls", EventName: ns + "-" + name,
			DefaultAggregation: billingv1.MeterAggregation{Formula: billingv1.MeterSum},
			CustomerMapping:    &billingv1.MeterCustomerMapping{EventPayloadKey: "tenant"}}}
}

func stripeMeter(t *testing.T, id string) *stripego.BillingMeter {
	t.Helper()
	m, err := simClient().API.BillingMeters.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A Meter is created with its event name, aggregation and payload keys, renamed in place, reactivated when it was
// deactivated in Stripe, and deactivated on deletion (Deactivate, the default).
func TestMeterCreateUpdateDeactivate(t *testing.T) {
	ctx, ns := newNamespace(t)
	m := newMeter(ns, "calls")
	create(t, m)
	m = waitReady(t, ctx, m)
	got := stripeMeter(t, m.Status.ID)
	if got.EventName != m.Spec.EventName || got.DisplayName != "API calls" ||
		got.DefaultAggregation.Formula != stripego.BillingMeterDefaultAggregationFormulaSum ||
		got.CustomerMapping.EventPayloadKey != "tenant" || got.ValueSettings.EventPayloadKey != "value" ||
		m.Status.StripeState != "active" || m.Spec.DeletionPolicy != billingv1.MeterDeactivate {
		t.Fatalf("Stripe meter %+v, status %+v", got, m.Status)
	}
	if err := updateSpec(m, func(m *billingv1.Meter) { m.Spec.DisplayName = "Search calls" }); err != nil {
		t.Fatal(err)
	}
	m = waitReady(t, ctx, m)
	if got := stripeMeter(t, m.Status.ID); got.DisplayName != "Search calls" {
		t.Fatalf("renamed: %+v", got)
	}
	// Deactivated in the Dashboard: the next sync reactivates it, as the Meter asks for an active meter.
	if _, err := simClient().API.BillingMeters.Deactivate(m.Status.ID, nil); err != nil {
		t.Fatal(err)
	}
	m = waitReadyAfterRequest(t, m)
	if got := stripeMeter(t, m.Status.ID); got.Status != stripego.BillingMeterStatusActive ||
		m.Status.StripeState != "active" {
		t.Fatalf("not reactivated: %s, status %s", got.Status, m.Status.StripeState)
	}
	if err := env.Client.Delete(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, m)
	if got := stripeMeter(t, m.Status.ID); got.Status != stripego.BillingMeterStatusInactive {
		t.Errorf("Deactivate left the meter %s", got.Status)
	}
}

// A Meter adopts an existing Stripe meter and renames it; Orphan leaves it active on deletion; an adopted meter
// whose immutable fields differ from the spec is Stalled with a message naming them.
func TestMeterAdoptAndOrphan(t *testing.T) {
	ctx, ns := newNamespace(t)
	existing, err := simClient().API.BillingMeters.New(&stripego.BillingMeterParams{
		DisplayName: stripego.String("Storage"), EventName: stripego.String(ns + "-gb"),
		DefaultAggregation: &stripego.BillingMeterDefaultAggregationParams{Formula: stripego.String("sum")}})
	if err != nil {
		t.Fatal(err)
	}
	m := newMeter(ns, "gb")
	m.Spec.DisplayName, m.Spec.CustomerMapping = "GB stored", nil
	m.Spec.DeletionPolicy = billingv1.MeterOrphan
	m.Spec.Adopt = &billingv1.MeterAdopt{ID: existing.ID}
	create(t, m)
	m = waitReady(t, ctx, m)
	if got := stripeMeter(t, existing.ID); m.Status.ID != existing.ID || got.DisplayName != "GB stored" {
		t.Fatalf("adopted: %s %+v", m.Status.ID, got)
	}
	if err := env.Client.Delete(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, m)
	if got := stripeMeter(t, existing.ID); got.Status != stripego.BillingMeterStatusActive {
		t.Error("Orphan deactivated the meter")
	}

	other, err := simClient().API.BillingMeters.New(&stripego.BillingMeterParams{
		DisplayName: stripego.String("Seats"), EventName: stripego.String(ns + "-seats"),
		DefaultAggregation: &stripego.BillingMeterDefaultAggregationParams{Formula: stripego.String("count")}})
	if err != nil {
		t.Fatal(err)
	}
	mismatch := newMeter(ns, "seats")
	mismatch.Spec.CustomerMapping = nil
	mismatch.Spec.Adopt = &billingv1.MeterAdopt{ID: other.ID}
	create(t, mismatch)
	if c := waitReason(t, ctx, mismatch, billingv1.ReasonInvalidRequest); !strings.Contains(c.Message,
		"defaultAggregation.formula (spec sum, Stripe count)") {
		t.Errorf("adopt of a meter that differs: %s", c.Message)
	}
}

// The API server refuses a change of a Meter's event name, aggregation and payload keys with a clear message.
func TestMeterImmutableFields(t *testing.T) {
	ctx, ns := newNamespace(t)
	m := newMeter(ns, "fixed")
	m.Spec.DeletionPolicy = billingv1.MeterOrphan
	create(t, m)
	for _, tc := range []struct {
		mutate func(*billingv1.Meter)
		want   string
	}{
		{func(m *billingv1.Meter) { m.Spec.EventName = "renamed" }, "eventName is immutable"},
		{func(m *billingv1.Meter) { m.Spec.DefaultAggregation.Formula = billingv1.MeterCount },
			"defaultAggregation is immutable"},
		{func(m *billingv1.Meter) { m.Spec.CustomerMapping = nil }, "customerMapping is immutable"},
		{func(m *billingv1.Meter) {
			m.Spec.ValueSettings = &billingv1.MeterValueSettings{EventPayloadKey: "bytes"}
		}, "valueSettings is immutable"},
	} {
		testenv.Eventually(t, 10*time.Second, func() error { // the operator writes its status meanwhile
			cur := &billingv1.Meter{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(m), cur); err != nil {
				return err
			}
			tc.mutate(cur)
			err := env.Client.Update(ctx, cur)
			if apierrors.IsConflict(err) {
				return err
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want a refusal saying %q, got %v", tc.want, err)
			}
			return nil
		})
	}
}

// A metered Subscription on a test clock: the Price waits for its Meter, the first invoice bills no usage, the
// meter events sent for the customer during the period are summed, and when the clock passes the period's end the
// renewal invoice carries their amount (usage × unit amount), which the Subscription's status shows.
func TestMeteredSubscriptionBillsUsage(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sc := simClient()
	clock, cus := clockCustomer(t, ns, "metered")
	price := newPrice(ns, "per-call", 3)
	price.Spec.Recurring.UsageType = billingv1.UsageMetered
	price.Spec.Recurring.MeterRef = &billingv1.LocalObjectReference{Name: "calls"}
	sub := newSubscription(ns, "metered-sub", "metered", "per-call")
	sub.Spec.Items[0].Quantity = nil
	create(t, newProduct(ns, "plan"), price, cus, sub)
	if c := waitReason(t, ctx, price, billingv1.ReasonDependencyNotReady); !strings.Contains(c.Message, "calls") {
		t.Errorf("the Price waits for its Meter: %s", c.Message)
	}
	meter := newMeter(ns, "calls")
	create(t, meter)
	meter = waitReady(t, ctx, meter)
	price = waitReady(t, ctx, price)
	if got, err := sc.API.Prices.Get(price.Status.ID, nil); err != nil || got.Recurring.Meter != meter.Status.ID ||
		got.Recurring.UsageType != stripego.PriceRecurringUsageTypeMetered || price.Status.MeterID != meter.Status.ID {
		t.Fatalf("metered price: %+v %v, status %+v", got.Recurring, err, price.Status)
	}
	sub = waitReady(t, ctx, sub)
	cus = waitReady(t, ctx, cus)
	if sub.Status.LatestInvoice == nil || sub.Status.LatestInvoice.AmountDue != 0 {
		t.Fatalf("the first invoice of a metered subscription bills no usage: %+v", sub.Status.LatestInvoice)
	}
	first := sub.Status.LatestInvoice.ID
	for _, v := range []string{"120", "80", "300"} {
		if _, err := sc.API.BillingMeterEvents.New(&stripego.BillingMeterEventParams{
			EventName: stripego.String(meter.Spec.EventName),
			Payload:   map[string]string{"tenant": cus.Status.ID, "value": v}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sc.API.TestHelpersTestClocks.Advance(clock.ID, &stripego.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripego.Int64(sub.Status.CurrentPeriodEnd.Unix() + 3600)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sub), sub); err != nil {
			return err
		}
		if in := sub.Status.LatestInvoice; in == nil || in.ID == first || in.AmountDue != 500*3 ||
			in.Status != "paid" {
			return fmt.Errorf("latest invoice %+v, want the renewal's, paid, due 1500", in)
		}
		return nil
	})
	invoices := sc.API.Invoices.List(&stripego.InvoiceListParams{Subscription: stripego.String(sub.Status.ID)})
	for invoices.Next() {
		in := invoices.Invoice()
		if in.ID != sub.Status.LatestInvoice.ID {
			continue
		}
		if l := in.Lines.Data; len(l) != 1 || l[0].Quantity != 500 || l[0].Amount != 1500 ||
			l[0].Price.ID != price.Status.ID {
			t.Errorf("renewal invoice lines: %+v", l)
		}
	}
	if err := invoices.Err(); err != nil {
		t.Fatal(err)
	}
}

// metersNamed counts the Stripe meters of an event name.
func metersNamed(t *testing.T, eventName string) int {
	t.Helper()
	n := 0
	it := simClient().API.BillingMeters.List(&stripego.BillingMeterListParams{})
	for it.Next() {
		if it.BillingMeter().EventName == eventName {
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// The manager is stopped after Stripe committed a Meter's create but before the status write, and started again
// after the idempotency key expired: a meter carries no metadata, so the operator finds it by its event name and
// records it, instead of creating a second one (which Stripe would refuse for the same event name).
func TestMeterCrashAfterCommit(t *testing.T) {
	ctx, ns := newNamespace(t)
	f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultLatency, Method: "POST", Path: "/v1/billing/meters",
		LatencyMS: 1500, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.RemoveFault(f.ID) })
	m := newMeter(ns, "crash")
	create(t, m)
	testenv.Eventually(t, 30*time.Second, func() error {
		if faultFired(f.ID) != 1 {
			return fmt.Errorf("the create has not reached Stripe")
		}
		return nil
	})
	manager.stop()
	testenv.Eventually(t, 10*time.Second, func() error {
		if metersNamed(t, m.Spec.EventName) != 1 {
			return fmt.Errorf("Stripe has not committed the create")
		}
		return nil
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(m), m); err != nil {
		t.Fatal(err)
	}
	if m.Status.ID != "" || PendingCreate(m) == nil {
		t.Fatalf("want a pending create and no ID after the crash, got %+v", m.Status)
	}
	sim.ExpireIdempotencyKeys()
	if manager, err = startManager(); err != nil {
		t.Fatal(err)
	}
	m = waitReady(t, ctx, m)
	if n := metersNamed(t, m.Spec.EventName); n != 1 || PendingCreate(m) != nil {
		t.Errorf("%d Stripe meters after the restart, want exactly 1; pending %+v", n, PendingCreate(m))
	}
}

// A meter deactivated in the Dashboard is reactivated from its billing.meter.deactivated event alone, with a
// DriftDetected Event.
func TestWebhookMeterDeactivationIsUndone(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	m := newMeter(ns, "drifting")
	create(t, m)
	m = waitReady(t, ctx, m)
	if _, err := simClient().API.BillingMeters.Deactivate(m.Status.ID, nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripeMeter(t, m.Status.ID); got.Status != stripego.BillingMeterStatusActive {
			return fmt.Errorf("Stripe still has the meter %s", got.Status)
		}
		return nil
	})
	assertEvent(t, ns, m.Name, "Warning", "DriftDetected")
}

// A metered Price names exactly one Meter, and only a metered Price names one: the API server refuses the others.
// Moving it to another Meter rolls it, as any change Stripe cannot make in place (the old price archived and listed
// in status.previousIDs); an adopted metered price on another meter rolls the same way.
func TestMeteredPriceRollsToAnotherMeter(t *testing.T) {
	ctx, ns := newNamespace(t)
	metered := func(name, meter string) *billingv1.Price {
		p := newPrice(ns, name, 2)
		p.Spec.Recurring.UsageType = billingv1.UsageMetered
		if meter != "" {
			p.Spec.Recurring.MeterRef = &billingv1.LocalObjectReference{Name: meter}
		}
		return p
	}
	for _, tc := range []struct {
		price *billingv1.Price
		want  string
	}{
		{metered("no-meter", ""), "a metered price needs meterRef or meterID"},
		{func() *billingv1.Price {
			p := metered("both", "a")
			p.Spec.Recurring.MeterID = "mtr_123"
			return p
		}(), "at most one of meterRef or meterID"},
		{func() *billingv1.Price {
			p := newPrice(ns, "licensed", 2)
			p.Spec.Recurring.MeterID = "mtr_123"
			return p
		}(), "only a metered price takes one"},
	} {
		if err := env.Client.Create(ctx, tc.price, client.DryRunAll); err == nil ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("want a refusal saying %q, got %v", tc.want, err)
		}
	}
	a, b := newMeter(ns, "a"), newMeter(ns, "b")
	price := metered("usage", "a")
	create(t, newProduct(ns, "plan"), a, b, price)
	a, b = waitReady(t, ctx, a), waitReady(t, ctx, b)
	price = waitReady(t, ctx, price)
	first := price.Status.ID
	if price.Status.MeterID != a.Status.ID {
		t.Fatalf("status.meterID %s, want %s", price.Status.MeterID, a.Status.ID)
	}
	if err := updateSpec(price, func(p *billingv1.Price) {
		p.Spec.Recurring.MeterRef = &billingv1.LocalObjectReference{Name: "b"}
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		price = waitReady(t, ctx, price)
		if price.Status.ID == first || price.Status.MeterID != b.Status.ID {
			return fmt.Errorf("not rolled: %+v", price.Status)
		}
		return nil
	})
	old, err := simClient().API.Prices.Get(first, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := simClient().API.Prices.Get(price.Status.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if old.Active || cur.Recurring.Meter != b.Status.ID || cur.LookupKey != price.Spec.LookupKey ||
		len(price.Status.PreviousIDs) != 1 || price.Status.PreviousIDs[0] != first {
		t.Errorf("roll: old active %v, new meter %s key %q, previousIDs %v", old.Active, cur.Recurring.Meter,
			cur.LookupKey, price.Status.PreviousIDs)
	}
}

// An existing metered Stripe price is adopted by a Price naming its meter by ID (no roll: the meter matches), and
// archived on deletion (Archive, as any Price).
func TestMeteredPriceAdoptAndArchive(t *testing.T) {
	ctx, ns := newNamespace(t)
	meter := newMeter(ns, "seats")
	prod := newProduct(ns, "plan")
	create(t, meter, prod)
	meter, prod = waitReady(t, ctx, meter), waitReady(t, ctx, prod)
	existing, err := simClient().API.Prices.New(&stripego.PriceParams{Product: stripego.String(prod.Status.ID),
		Currency: stripego.String("usd"), UnitAmount: stripego.Int64(2),
		Recurring: &stripego.PriceRecurringParams{Interval: stripego.String("month"),
			UsageType: stripego.String("metered"), Meter: stripego.String(meter.Status.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	price := newPrice(ns, "adopted", 2)
	price.Spec.Recurring.UsageType = billingv1.UsageMetered
	price.Spec.Recurring.MeterID = meter.Status.ID
	price.Spec.Adopt = &billingv1.PriceAdopt{ID: existing.ID}
	create(t, price)
	price = waitReady(t, ctx, price)
	if price.Status.ID != existing.ID || price.Status.MeterID != meter.Status.ID || len(price.Status.PreviousIDs) != 0 {
		t.Fatalf("adopted metered price: %+v", price.Status)
	}
	if err := env.Client.Delete(ctx, price); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, price)
	if got, err := simClient().API.Prices.Get(existing.ID, nil); err != nil || got.Active {
		t.Errorf("Archive left the metered price active: %v", err)
	}
}

// An existing Stripe meter observed (managementPolicy Observe) is read and never written: status.drift lists its
// display name and that it is inactive. Switching to Manage applies exactly that: renamed and reactivated.
func TestMeterObserveThenManage(t *testing.T) {
	ctx, ns := newNamespace(t)
	sc := simClient()
	existing, err := sc.API.BillingMeters.New(&stripego.BillingMeterParams{DisplayName: stripego.String("Old"),
		EventName:          stripego.String(ns + "-observed"),
		DefaultAggregation: &stripego.BillingMeterDefaultAggregationParams{Formula: stripego.String("sum")},
		CustomerMapping: &stripego.BillingMeterCustomerMappingParams{EventPayloadKey: stripego.String("tenant"),
			Type: stripego.String("by_id")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.API.BillingMeters.Deactivate(existing.ID, nil); err != nil {
		t.Fatal(err)
	}
	m := newMeter(ns, "observed")
	m.Spec.ManagementPolicy = billingv1.ManagementObserve
	m.Spec.Adopt = &billingv1.MeterAdopt{ID: existing.ID}
	before := writes()
	create(t, m)
	checkDrifted(t, ctx, m, existing.ID, []billingv1.FieldDrift{
		{Field: "display_name", Stripe: "Old", Spec: "API calls"},
		{Field: "status", Stripe: "inactive", Spec: "active"},
	})
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes while observing", n)
	}
	setPolicy(t, ctx, m, billingv1.ManagementManage)
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripeMeter(t, existing.ID); got.DisplayName != "API calls" ||
			got.Status != stripego.BillingMeterStatusActive {
			return fmt.Errorf("Stripe's meter: %s %s", got.DisplayName, got.Status)
		}
		return nil
	})
}
