package controllers

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

func TestConditionSetters(t *testing.T) {
	c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	setReconciling(c, billingv1.ReasonCreating, "creating")
	if isStalled(c) || readyOf(c) != (readyState{metav1.ConditionFalse, billingv1.ReasonCreating}) ||
		c.Status.ObservedGeneration != 0 {
		t.Errorf("reconciling: %+v", c.Status)
	}
	setStalled(c, billingv1.ReasonInvalidRequest, "bad")
	if !isStalled(c) || c.Status.ObservedGeneration != 3 || len(c.Status.Conditions) != 2 {
		t.Errorf("stalled: %+v", c.Status)
	}
	setReady(c, "ok")
	if isStalled(c) || readyOf(c).status != metav1.ConditionTrue || len(c.Status.Conditions) != 1 {
		t.Errorf("ready: %+v", c.Status)
	}
	for _, cond := range c.Status.Conditions {
		if cond.ObservedGeneration != 3 {
			t.Errorf("%s without the generation", cond.Type)
		}
	}
}

func TestResyncIntervalAndInSync(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := &Reconciler[*billingv1.Customer]{Options: Options{ResyncInterval: 10 * time.Hour,
		Now: func() time.Time { return now }}}
	c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Generation: 1, UID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}}
	setReady(c, "ok")
	synced := metav1.NewTime(now.Add(-2 * time.Hour))
	c.Status.LastSyncedAt = &synced
	if !r.inSync(c) || r.resyncDue(c) {
		t.Error("synced 2 h ago with a 10 h interval: should be in sync, not due")
	}
	// The per-object annotation shortens the interval, and inSync honours it.
	c.Annotations = map[string]string{billingv1.AnnotationResyncInterval: "1h"}
	if r.inSync(c) || !r.resyncDue(c) {
		t.Error("synced 2 h ago with a 1 h annotation: should be due")
	}
	// The jitter is ±10%, the same at every call for one object, and spreads objects created together.
	at := r.resyncAt(c)
	if d := at.Sub(synced.Time); d < 54*time.Minute || d > 66*time.Minute {
		t.Errorf("jittered resync after %v, want 1 h ± 10%%", d)
	}
	if !r.resyncAt(c).Equal(at) {
		t.Error("the resync time moved between two calls")
	}
	other := c.DeepCopy()
	other.UID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	if r.resyncAt(other).Equal(at) {
		t.Error("two objects synced together resync at the same instant")
	}
	c.Annotations[billingv1.AnnotationResyncInterval] = "5s" // below the minimum: ignored
	if r.resyncInterval(c) != 10*time.Hour {
		t.Errorf("interval %v", r.resyncInterval(c))
	}
	// A reconcile request not yet handled is due at once, through the watch, not the sweep.
	c.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: "now"}
	if r.inSync(c) || r.resyncDue(c) {
		t.Error("a pending reconcile request was skipped, or left to the sweep")
	}
	// The sweep's period follows the interval, between a second and 30 s.
	for _, c := range []struct{ interval, want time.Duration }{
		{10 * time.Hour, 30 * time.Second}, {20 * time.Second, time.Second}, {2 * time.Minute, 6 * time.Second}} {
		r.Options.ResyncInterval = c.interval
		if got := r.sweepEvery(); got != c.want {
			t.Errorf("sweep every %v for a %v interval, want %v", got, c.interval, c.want)
		}
	}
}

// A subscription event names its latest invoice by ID only (not expanded): what status knows of that invoice stays;
// a different invoice, or an expanded one, replaces it.
func TestSubscriptionStatusKeepsTheInvoiceAnEventOnlyNames(t *testing.T) {
	known := &billingv1.InvoiceSummary{ID: "in_1", Status: "paid", AmountDue: 700, Currency: "usd"}
	for _, c := range []struct {
		name    string
		payload string
		want    *billingv1.InvoiceSummary
	}{
		{"the same invoice, by ID", `{"id":"sub_1","latest_invoice":"in_1"}`, known},
		{"another invoice, by ID", `{"id":"sub_1","latest_invoice":"in_2"}`, &billingv1.InvoiceSummary{ID: "in_2"}},
		{"the same invoice, expanded", `{"id":"sub_1","latest_invoice":{"id":"in_1","object":"invoice",` +
			`"status":"open","amount_due":700,"currency":"usd"}}`,
			&billingv1.InvoiceSummary{ID: "in_1", Status: "open", AmountDue: 700, Currency: "usd"}},
		{"no invoice", `{"id":"sub_1"}`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s stripego.Subscription
			if err := json.Unmarshal([]byte(c.payload), &s); err != nil {
				t.Fatal(err)
			}
			sub := &billingv1.Subscription{}
			sub.Status.LatestInvoice = known.DeepCopy()
			setSubscriptionStatus(sub, &s)
			if !reflect.DeepEqual(sub.Status.LatestInvoice, c.want) {
				t.Errorf("latest invoice %+v, want %+v", sub.Status.LatestInvoice, c.want)
			}
		})
	}
}
