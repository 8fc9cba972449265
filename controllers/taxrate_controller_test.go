package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func newTaxRate(ns, name, pct string) *billingv1.TaxRate {
	return &billingv1.TaxRate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.TaxRateSpec{DisplayName: "VAT", Percentage: pct, Country: "DE", TaxType: "vat"}}
}

// addFaults injects faults into the simulator for the rest of the test and returns their IDs.
func addFaults(t *testing.T, faults ...stripesim.Fault) []string {
	t.Helper()
	ids := make([]string, 0, len(faults))
	for _, f := range faults {
		added, err := sim.AddFault(f)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, added.ID)
		t.Cleanup(func() { sim.RemoveFault(added.ID) })
	}
	return ids
}

// firedTimes is how many times the faults named fired in all.
func firedTimes(ids []string) int {
	n := 0
	for _, f := range sim.Faults() {
		if slices.Contains(ids, f.ID) {
			n += f.Fired
		}
	}
	return n
}

func stripeTaxRate(t *testing.T, id string) *stripego.TaxRate {
	t.Helper()
	r, err := simClient().API.TaxRates.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A TaxRate is created, its mutable fields are updated in place, a change of percentage or inclusive rolls it to a
// successor (the old rate archived and listed in status.previousIDs, one Stripe object per roll, also when the
// successor's create and the archive fail on the way), and Archive archives it on deletion.
func TestTaxRateUpdateRollAndArchive(t *testing.T) {
	ctx, ns := newNamespace(t)
	tr := newTaxRate(ns, "vat", "19")
	create(t, tr)
	tr = waitReady(t, ctx, tr)
	first := tr.Status.ID
	if got := stripeTaxRate(t, first); got.Percentage != 19 || got.Inclusive || !got.Active ||
		got.DisplayName != "VAT" || got.Country != "DE" || got.TaxType != "vat" ||
		got.Metadata[billingv1.MetadataUID] != string(tr.UID) {
		t.Fatalf("Stripe tax rate: %+v", got)
	}

	if err := updateSpec(tr, func(r *billingv1.TaxRate) { r.Spec.DisplayName, r.Spec.Jurisdiction = "USt", "DE" }); err != nil {
		t.Fatal(err)
	}
	tr = waitReady(t, ctx, tr)
	if got := stripeTaxRate(t, tr.Status.ID); tr.Status.ID != first || got.DisplayName != "USt" ||
		got.Jurisdiction != "DE" {
		t.Fatalf("in-place update: ID %s (was %s), %+v", tr.Status.ID, first, got)
	}

	// The successor's create commits and then fails, and the old rate's archive fails once: the roll still ends
	// with exactly one successor, the old rate archived.
	faults := addFaults(t,
		stripesim.Fault{Kind: stripesim.FaultCommitThenFail, Method: "POST", Path: "/v1/tax_rates", Count: 1},
		stripesim.Fault{Kind: stripesim.FaultError, Method: "POST", Path: "/v1/tax_rates/" + first, Count: 1,
			Status: 503})
	if err := updateSpec(tr, func(r *billingv1.TaxRate) { r.Spec.Percentage = "19.5" }); err != nil {
		t.Fatal(err)
	}
	tr = waitReady(t, ctx, tr)
	if fired := firedTimes(faults); fired != 2 {
		t.Errorf("the faults fired %d times, want each once", fired)
	}
	second := tr.Status.ID
	if second == first || !slices.Equal(tr.Status.PreviousIDs, []string{first}) {
		t.Fatalf("no roll on a percentage change: %+v", tr.Status)
	}
	if old := stripeTaxRate(t, first); old.Active {
		t.Error("the rolled-away tax rate is still active")
	}
	if cur := stripeTaxRate(t, second); cur.Percentage != 19.5 || !cur.Active || cur.DisplayName != "USt" {
		t.Errorf("successor: %+v", cur)
	}

	if err := updateSpec(tr, func(r *billingv1.TaxRate) { r.Spec.Inclusive = true }); err != nil {
		t.Fatal(err)
	}
	tr = waitReady(t, ctx, tr)
	if tr.Status.ID == second || !slices.Equal(tr.Status.PreviousIDs, []string{first, second}) ||
		!stripeTaxRate(t, tr.Status.ID).Inclusive || stripeTaxRate(t, second).Active {
		t.Fatalf("no roll on an inclusive change: %+v", tr.Status)
	}
	if n := sim.ObjectsByUID()["tax_rate"][string(tr.UID)]; n != 3 {
		t.Errorf("%d Stripe tax rates for the TaxRate, want the original and two successors", n)
	}

	if err := env.Client.Delete(ctx, tr); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, tr)
	if stripeTaxRate(t, tr.Status.ID).Active {
		t.Error("Archive left the tax rate active")
	}
}

// A TaxRate adopts an existing Stripe tax rate and brings it to the spec; Orphan leaves it active on deletion; an
// adopt of a tax rate Stripe does not know is Stalled.
func TestTaxRateAdoptAndOrphan(t *testing.T) {
	ctx, ns := newNamespace(t)
	existing, err := simClient().API.TaxRates.New(&stripego.TaxRateParams{DisplayName: stripego.String("GST"),
		Percentage: stripego.Float64(10), Inclusive: stripego.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTaxRate(ns, "gst", "10")
	tr.Spec.DisplayName, tr.Spec.Inclusive, tr.Spec.Country, tr.Spec.TaxType = "GST", true, "AU", "gst"
	tr.Spec.DeletionPolicy = billingv1.Orphan
	tr.Spec.Adopt = &billingv1.TaxRateAdopt{ID: existing.ID}
	create(t, tr)
	tr = waitReady(t, ctx, tr)
	if got := stripeTaxRate(t, existing.ID); tr.Status.ID != existing.ID || got.Country != "AU" ||
		got.TaxType != "gst" || got.Metadata[billingv1.MetadataUID] != string(tr.UID) {
		t.Fatalf("adopted: %s %+v", tr.Status.ID, got)
	}
	if err := env.Client.Delete(ctx, tr); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, tr)
	if !stripeTaxRate(t, existing.ID).Active {
		t.Error("Orphan archived the tax rate")
	}

	missing := newTaxRate(ns, "missing", "5")
	missing.Spec.Adopt = &billingv1.TaxRateAdopt{ID: "txr_doesnotexist"}
	create(t, missing)
	if c := waitReason(t, ctx, missing, billingv1.ReasonReferenceNotFound); !strings.Contains(c.Message,
		"txr_doesnotexist") {
		t.Errorf("adopt of a missing tax rate: %s", c.Message)
	}
}

// The API server refuses a malformed TaxRate with a message naming what is wrong, and a change of adopt.
func TestTaxRateSchema(t *testing.T) {
	ctx, ns := newNamespace(t)
	for _, tc := range []struct {
		mutate func(*billingv1.TaxRate)
		want   string
	}{
		{func(r *billingv1.TaxRate) { r.Spec.Percentage = "101" }, "spec.percentage"},
		{func(r *billingv1.TaxRate) { r.Spec.Percentage = "7.12345" }, "spec.percentage"},
		{func(r *billingv1.TaxRate) { r.Spec.Percentage = "-1" }, "spec.percentage"},
		{func(r *billingv1.TaxRate) { r.Spec.Country = "de" }, "spec.country"},
		{func(r *billingv1.TaxRate) { r.Spec.TaxType = "tithe" }, "spec.taxType"},
		{func(r *billingv1.TaxRate) { r.Spec.DisplayName = "" }, "spec.displayName"},
		{func(r *billingv1.TaxRate) { r.Spec.DeletionPolicy = "Delete" }, "spec.deletionPolicy"},
	} {
		tr := newTaxRate(ns, "bad", "19")
		tc.mutate(tr)
		err := env.Client.Create(ctx, tr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want a refusal naming %s, got %v", tc.want, err)
		}
	}
	for _, pct := range []string{"0", "100", "100.0000", "8.875"} {
		tr := newTaxRate(ns, "ok-"+strings.ReplaceAll(pct, ".", "-"), pct)
		tr.Spec.Active = ptr.To(false)
		tr.Spec.DeletionPolicy = billingv1.Orphan
		if err := env.Client.Create(ctx, tr, client.DryRunAll); err != nil {
			t.Errorf("percentage %s refused: %v", pct, err)
		}
	}
	adopted := newTaxRate(ns, "adopted", "5")
	adopted.Spec.Adopt = &billingv1.TaxRateAdopt{ID: "txr_one"}
	adopted.Spec.DeletionPolicy = billingv1.Orphan
	create(t, adopted)
	testenv.Eventually(t, 10*time.Second, func() error { // the operator writes its status meanwhile
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(adopted), adopted); err != nil {
			return err
		}
		adopted.Spec.Adopt.ID = "txr_two"
		err := env.Client.Update(ctx, adopted)
		if apierrors.IsConflict(err) {
			return err
		}
		if err == nil || !strings.Contains(err.Error(), "adopt is immutable") {
			t.Errorf("adopt changed: %v", err)
		}
		return nil
	})
}

// A tax rate changed in the Dashboard (tax_rate.updated without the operator's key) is restored from its event,
// with a DriftDetected Event; reactivating an archived rate there is undone as well.
func TestWebhookTaxRateDriftIsUndone(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	tr := newTaxRate(ns, "drifting-vat", "19")
	create(t, tr)
	tr = waitReady(t, ctx, tr)
	if _, err := simClient().API.TaxRates.Update(tr.Status.ID, &stripego.TaxRateParams{
		DisplayName: stripego.String("Edited by hand"), Active: stripego.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripeTaxRate(t, tr.Status.ID); got.DisplayName != "VAT" || !got.Active {
			return fmt.Errorf("Stripe still has %q active=%v", got.DisplayName, got.Active)
		}
		return nil
	})
	assertEvent(t, ns, tr.Name, "Warning", "DriftDetected")
}

// An existing Stripe tax rate adopted with managementPolicy Observe is read and never written: status.drift lists
// the in-place change and the immutable one field by field. Switching to Manage applies that plan: the rate rolls
// to a successor with the spec's percentage (the change of display name with it), and the observed rate is archived.
func TestTaxRateObserveThenManage(t *testing.T) {
	ctx, ns := newNamespace(t)
	existing, err := simClient().API.TaxRates.New(&stripego.TaxRateParams{DisplayName: stripego.String("Old VAT"),
		Percentage: stripego.Float64(16), Inclusive: stripego.Bool(false), Country: stripego.String("DE"),
		TaxType: stripego.String("vat")})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTaxRate(ns, "observed-vat", "19")
	tr.Spec.ManagementPolicy = billingv1.ManagementObserve
	tr.Spec.Adopt = &billingv1.TaxRateAdopt{ID: existing.ID}
	before := writes()
	create(t, tr)
	checkDrifted(t, ctx, tr, existing.ID, []billingv1.FieldDrift{
		{Field: "display_name", Stripe: "Old VAT", Spec: "VAT"},
		{Field: "percentage", Stripe: "16", Spec: "19"},
	})
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes while observing", n)
	}
	setPolicy(t, ctx, tr, billingv1.ManagementManage)
	checkManaged(t, ctx, tr)
	tr = waitReady(t, ctx, tr)
	if tr.Status.ID == existing.ID || !slices.Equal(tr.Status.PreviousIDs, []string{existing.ID}) {
		t.Fatalf("Manage did not roll the observed rate: %+v", tr.Status)
	}
	if got := stripeTaxRate(t, tr.Status.ID); got.Percentage != 19 || got.DisplayName != "VAT" {
		t.Errorf("successor: %+v", got)
	}
	if stripeTaxRate(t, existing.ID).Active {
		t.Error("the observed rate is still active after the roll")
	}
}
