package controllers

import (
	"encoding/json"
	"slices"
	"testing"

	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A subscription whose status has every field set, so each projection shows who owns what.
func fullSubscription() *billingv1.Subscription {
	now := metav1.Now()
	sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", Generation: 2}}
	sub.Status = billingv1.SubscriptionStatus{
		StripeStatus: billingv1.StripeStatus{ID: "sub_1", ObservedGeneration: 2, CreateKey: "k", LastSyncedAt: &now,
			LastEventID: "evt_1", LastEventCreated: 10, SyncRequest: "evt_0", LastHandledSyncRequest: "evt_0",
			LastHandledReconcileAt: "x", Drift: []billingv1.FieldDrift{{Field: "metadata.team", Spec: "a"}}},
		CustomerID: "cus_1", StripeState: "active", CurrentPeriodStart: &now, CurrentPeriodEnd: &now,
		CancelAtPeriodEnd: true, Items: []billingv1.SubscriptionItemStatus{{ID: "si_1", PriceID: "price_1"}},
		LatestInvoice: &billingv1.InvoiceSummary{ID: "in_1", Status: "paid"},
	}
	setReady(sub, "in sync")
	meta.SetStatusCondition(&sub.Status.Conditions, metav1.Condition{Type: billingv1.ConditionPaymentFailed,
		Status: metav1.ConditionFalse, Reason: billingv1.ReasonPaymentSucceeded})
	return sub
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func conditionTypes(m map[string]any) []string {
	l, _ := m["conditions"].([]any)
	out := make([]string, 0, len(l))
	for _, c := range l {
		out = append(out, c.(map[string]any)["type"].(string))
	}
	slices.Sort(out)
	return out
}

// Every status field has exactly one owner; with webhooks the subscription's lifecycle moves to the event worker.
func TestStatusOwnershipPartitionsEveryField(t *testing.T) {
	lifecycle := []string{"cancelAtPeriodEnd", "currentPeriodEnd", "currentPeriodStart", "latestInvoice",
		"stripeStatus"}
	for _, webhooks := range []bool{false, true} {
		sub := fullSubscription()
		rec, err := statusOwner{name: ownerReconciler, webhooks: webhooks}.project(sub)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := statusOwner{name: ownerEvents, webhooks: webhooks}.project(sub)
		if err != nil {
			t.Fatal(err)
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(sub)
		if err != nil {
			t.Fatal(err)
		}
		all := u["status"].(map[string]any)
		for field := range all {
			_, inRec := rec[field]
			_, inEv := ev[field]
			if field == "conditions" {
				if !inRec || !inEv {
					t.Errorf("webhooks=%v: conditions are shared by type, got reconciler %v events %v", webhooks,
						inRec, inEv)
				}
				continue
			}
			if inRec == inEv {
				t.Errorf("webhooks=%v: field %s owned by reconciler=%v events=%v, want exactly one", webhooks, field,
					inRec, inEv)
			}
		}
		for _, f := range lifecycle {
			if _, inEv := ev[f]; inEv != webhooks {
				t.Errorf("webhooks=%v: the event worker owns %s: %v", webhooks, f, inEv)
			}
		}
		for _, f := range []string{"lastEventID", "lastEventCreated", "syncRequest"} {
			if _, ok := ev[f]; !ok {
				t.Errorf("webhooks=%v: the event worker does not own %s", webhooks, f)
			}
		}
		for _, f := range []string{"id", "observedGeneration", "createKey", "lastSyncedAt", "lastHandledSyncRequest",
			"items", "customerID", "drift"} {
			if _, ok := rec[f]; !ok {
				t.Errorf("webhooks=%v: the reconciler does not own %s (has %v)", webhooks, f, keys(rec))
			}
		}
		if got := conditionTypes(rec); !slices.Equal(got, []string{"Ready"}) {
			t.Errorf("reconciler conditions %v", got)
		}
		if got := conditionTypes(ev); !slices.Equal(got, []string{"PaymentFailed"}) {
			t.Errorf("event worker conditions %v", got)
		}
	}
}

// A write that changes nothing the owner owns is not sent: sameAs sees only the owner's fields.
func TestSameAsComparesOnlyOwnedFields(t *testing.T) {
	base := fullSubscription()
	obj := base.DeepCopy()
	obj.Status.LastEventID = "evt_2" // the worker's field
	rec := statusOwner{name: ownerReconciler, webhooks: true}
	if same, err := rec.sameAs(base, obj); err != nil || !same {
		t.Fatalf("the reconciler sees a change in a field it does not own: %v %v", same, err)
	}
	ev := statusOwner{name: ownerEvents, webhooks: true}
	if same, _ := ev.sameAs(base, obj); same {
		t.Fatal("the worker does not see a change of lastEventID")
	}
	if same, _ := ev.sameAs(base, obj, "lastEventID"); !same {
		t.Fatal("ignored fields are compared")
	}
	obj.Status.LatestInvoice.Status = "open"
	if same, _ := ev.sameAs(base, obj, "lastEventID"); same {
		t.Fatal("the worker does not see a change of the latest invoice")
	}
}

func TestPendingCreateRecord(t *testing.T) {
	rec := func(key string) string {
		b, _ := json.Marshal(billingv1.PendingCreate{IdempotencyKey: key, Generation: 1, StartedAt: metav1.Now()})
		return string(b)
	}
	cus := &billingv1.Customer{}
	if PendingCreate(cus) != nil {
		t.Fatal("pending without a record")
	}
	cus.Annotations = map[string]string{billingv1.AnnotationPendingCreate: rec("k1")}
	if p := PendingCreate(cus); p == nil || p.IdempotencyKey != "k1" {
		t.Fatalf("record not read: %+v", p)
	}
	cus.Status.ID, cus.Status.CreateKey = "cus_1", "k1"
	if PendingCreate(cus) != nil {
		t.Fatal("a create recorded in status (createKey) is still pending")
	}
	cus.Annotations[billingv1.AnnotationPendingCreate] = rec("k2") // a replacement under way
	if p := PendingCreate(cus); p == nil || p.IdempotencyKey != "k2" {
		t.Fatalf("a newer record is not pending: %+v", p)
	}
	cus.Annotations[billingv1.AnnotationPendingCreate] = "not json"
	if p := PendingCreate(cus); p == nil || p.Generation != -1 {
		t.Fatalf("an unreadable record must be treated as an interrupted create with an unknown key: %+v", p)
	}
}

// One table from error class to reason: a card error is PaymentFailed and Stalled, a 429 is retried after a second.
func TestErrorRowEveryClass(t *testing.T) {
	want := map[stripe.Class]struct {
		reason  string
		stalled bool
	}{
		stripe.ClassRateLimited:         {billingv1.ReasonRateLimited, false},
		stripe.ClassUnavailable:         {billingv1.ReasonStripeUnavailable, false},
		stripe.ClassInProgress:          {billingv1.ReasonRequestInProgress, false},
		stripe.ClassIdempotencyMismatch: {billingv1.ReasonRequestInProgress, false},
		stripe.ClassInvalidRequest:      {billingv1.ReasonInvalidRequest, true},
		stripe.ClassNotFound:            {billingv1.ReasonReferenceNotFound, true},
		stripe.ClassAuthentication:      {billingv1.ReasonAuthenticationFailed, true},
		stripe.ClassPermission:          {billingv1.ReasonPermissionDenied, true},
		stripe.ClassCard:                {billingv1.ReasonPaymentFailed, true},
	}
	for class, w := range want {
		row := errorRow(class)
		if row.reason != w.reason || row.stalled != w.stalled {
			t.Errorf("%s: reason %s stalled %v, want %s %v", class, row.reason, row.stalled, w.reason, w.stalled)
		}
	}
	if len(errorTable) != len(want) {
		t.Errorf("the table has %d rows, the test %d", len(errorTable), len(want))
	}
	if row := errorRow(stripe.Class(99)); row.reason != billingv1.ReasonStripeUnavailable || row.stalled {
		t.Errorf("an unknown class must be retried: %+v", row)
	}
}

func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.kind] || seen[k.stripeObject] {
			t.Fatalf("%s registered twice", k.kind)
		}
		seen[k.kind], seen[k.stripeObject] = true, true
		got, err := kindOf(k.newObject())
		if err != nil || got != k.kind {
			t.Errorf("kindOf(%T) = %q, %v", k.newObject(), got, err)
		}
		if byObj, ok := kindByStripeObject(k.stripeObject); !ok || byObj.kind != k.kind {
			t.Errorf("kindByStripeObject(%s) = %v", k.stripeObject, byObj.kind)
		}
		// managementPolicy (Observe) reaches the generic loop through billingv1.Managed.
		if _, ok := k.newObject().(billingv1.Managed); !ok {
			t.Errorf("%s does not implement billingv1.Managed (spec.managementPolicy)", k.kind)
		}
		for _, ref := range k.refs {
			if _, ok := kindByName(ref.kind); !ok {
				t.Errorf("%s references an unregistered kind %s", k.kind, ref.kind)
			}
		}
	}
	if _, err := kindOf(&billingv1.StripeEvent{}); err == nil {
		t.Error("kindOf answers for a type that is not a billing kind")
	}
	if k, err := kindOf(&billingv1.Price{}); err != nil || k != kindPrice {
		t.Errorf("kindOf(Price) = %q, %v", k, err)
	}
}

// A failed invoice's condition is set by its first failure; later failure events of the same invoice leave it (so
// its reason is read from Stripe once per invoice), and another invoice's failure replaces it.
func TestFailingForOncePerInvoice(t *testing.T) {
	sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{UID: types.UID("u")}}
	in := fullInvoice("in_9", "open")
	if failingFor(sub, "in_9") {
		t.Fatal("failing before any event")
	}
	foldInvoice(sub, in, "invoice.payment_failed", "evt_5", "The card was declined.")
	if !failingFor(sub, "in_9") || failingFor(sub, "in_8") {
		t.Fatal("failingFor does not name the failed invoice")
	}
	first := *meta.FindStatusCondition(sub.Status.Conditions, billingv1.ConditionPaymentFailed)
	foldInvoice(sub, in, "invoice.payment_failed", "evt_6", "")
	if c := meta.FindStatusCondition(sub.Status.Conditions, billingv1.ConditionPaymentFailed); c.Message != first.Message {
		t.Errorf("a retry of the same invoice changed the condition: %q -> %q", first.Message, c.Message)
	}
	foldInvoice(sub, fullInvoice("in_10", "open"), "invoice.payment_failed", "evt_7", "The card has expired.")
	if !failingFor(sub, "in_10") {
		t.Error("the failure of the next invoice was not recorded")
	}
	foldInvoice(sub, fullInvoice("in_10", "paid"), "invoice.paid", "evt_8", "")
	if failingFor(sub, "in_10") {
		t.Error("still failing after the invoice was paid")
	}
}

func TestInvoiceRank(t *testing.T) {
	order := []string{"draft", "open", "paid"}
	for i := 1; i < len(order); i++ {
		if invoiceRank(order[i-1]) >= invoiceRank(order[i]) {
			t.Errorf("%s does not come before %s", order[i-1], order[i])
		}
	}
	if invoiceRank("void") != invoiceRank("paid") || invoiceRank("uncollectible") != invoiceRank("paid") {
		t.Error("final states rank alike")
	}
}

func fullInvoice(id, status string) *stripego.Invoice {
	return &stripego.Invoice{ID: id, Status: stripego.InvoiceStatus(status), AmountDue: 1000, Currency: "usd",
		PaymentIntent: &stripego.PaymentIntent{ID: "pi_1"}}
}
