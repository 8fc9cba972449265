package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// A created Customer costs the operator two writes: the finalizer and the pending-create record in one patch
// (before the POST), then one status write. Its customer.created event is not even delivered (the operator does not
// register for it), and each status field has one field manager.
func TestCreateCostsTwoWritesAndOneStripeCall(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	posts, reads := calls("POST /v1/customers"), calls("GET /v1/customers/{id}")
	cus := newCustomer(ns, "lean")
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	cus = waitReady(t, ctx, cus)
	// The creation's event is not among the types the operator registers for (the create's answer holds what it
	// carries): nothing about the new customer is delivered, stored or folded.
	time.Sleep(time.Second)
	l := &billingv1.StripeEventList{}
	if err := env.Client.List(ctx, l, client.InNamespace(operatorNamespace)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range l.Items {
		if ev.Spec.ObjectID == cus.Status.ID {
			t.Errorf("event %s (%s) of the new customer stored", ev.Spec.EventID, ev.Spec.Type)
		}
	}
	if got := writesTo(ns, "lean"); !slices.Equal(got, []string{"patch", "status apply"}) {
		t.Errorf("operator writes to the Customer: %v, want [patch, status apply]", got)
	}
	if n := calls("POST /v1/customers") - posts; n != 1 {
		t.Errorf("%d customer creates, want 1", n)
	}
	if n := calls("GET /v1/customers/{id}") - reads; n != 0 {
		t.Errorf("%d customer reads after the create, want 0 (the event's payload is the truth)", n)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cus.Finalizers, billingv1.Finalizer) || PendingCreate(cus) != nil || cus.Status.CreateKey == "" {
		t.Errorf("finalizer %v, pending %+v, createKey %q", cus.Finalizers, PendingCreate(cus), cus.Status.CreateKey)
	}
	for _, mf := range cus.ManagedFields {
		if mf.Subresource == "status" && mf.Manager != ownerReconciler && mf.Manager != ownerEvents {
			t.Errorf("status written by an unexpected field manager %q (%s)", mf.Manager, mf.Operation)
		}
		if mf.Subresource == "status" && mf.Operation != metav1.ManagedFieldsOperationApply {
			t.Errorf("status written by %s with %s, want server-side apply", mf.Manager, mf.Operation)
		}
	}
}

// The event worker writing the object while a create is in flight does not make the create's result conflict: no
// recovery by listing, no extra Stripe call, and both writers' fields are kept.
func TestWorkerWriteDuringCreateCostsNothing(t *testing.T) {
	ctx, ns := newNamespace(t)
	f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultLatency, Method: "POST", Path: "/v1/customers",
		LatencyMS: 1500, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.RemoveFault(f.ID) })
	lists, recovered := calls("GET /v1/customers"), testutil.ToFloat64(createsRecovered.WithLabelValues(kindCustomer))
	cus := newCustomer(ns, "contended")
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	// The pending record is stored before the POST, which the fault holds for 1.5 s: write the worker's fields now.
	waitPendingCreate(t, ctx, cus)
	worker := &billingv1.Customer{}
	cus.DeepCopyInto(worker)
	worker.Status.LastEventID, worker.Status.LastEventCreated = "evt_meanwhile", 1
	worker.Status.Disputes = []billingv1.DisputeSummary{{ID: "dp_meanwhile", Status: "needs_response"}}
	if err := (statusOwner{name: ownerEvents, webhooks: true}).apply(ctx, env.Client, cus, worker); err != nil {
		t.Fatal(err)
	}
	cus = waitReady(t, ctx, cus)
	if faultFired(f.ID) != 1 {
		t.Fatalf("the latency fault did not hold the create (fired %d)", faultFired(f.ID))
	}
	if n := calls("GET /v1/customers") - lists; n != 0 {
		t.Errorf("%d customer list calls: the create was recovered by listing", n)
	}
	if n := testutil.ToFloat64(createsRecovered.WithLabelValues(kindCustomer)) - recovered; n != 0 {
		t.Errorf("creates recovered went up by %v", n)
	}
	if n := sim.ObjectsByUID()["customer"][string(cus.UID)]; n != 1 {
		t.Errorf("%d Stripe customers, want 1", n)
	}
	if cus.Status.LastEventID != "evt_meanwhile" || len(cus.Status.Disputes) != 1 || cus.Status.ID == "" {
		t.Errorf("a writer's fields were lost: %+v", cus.Status)
	}
}

// An invoice event folded while a Subscription's create is in flight brings the latest invoice, not the
// subscription's state: the create's handover still records the state (without an event or a read to bring it), and
// keeps what the event wrote.
func TestHandoverFillsWhatAnEarlierFoldLacks(t *testing.T) {
	ctx, ns := newNamespace(t)
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 900), newCustomer(ns, "early"))
	waitReady(t, ctx, &billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "monthly"}})
	waitReady(t, ctx, &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "early"}})
	f, err := sim.AddFault(stripesim.Fault{Kind: stripesim.FaultLatency, Method: "POST", Path: "/v1/subscriptions",
		LatencyMS: 1500, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.RemoveFault(f.ID) })
	reads := calls("GET /v1/subscriptions/")
	sub := newSubscription(ns, "early", "early", "monthly")
	if err := env.Client.Create(ctx, sub); err != nil {
		t.Fatal(err)
	}
	waitPendingCreate(t, ctx, sub)
	// What the worker writes folding an invoice event: the latest invoice, and lastEventID.
	worker := sub.DeepCopy()
	worker.Status.LastEventID, worker.Status.LastEventCreated = "evt_invoice_first", 1
	worker.Status.LatestInvoice = &billingv1.InvoiceSummary{ID: "in_early", Status: "paid", AmountDue: 900,
		Currency: "usd"}
	if err := (statusOwner{name: ownerEvents, webhooks: true}).apply(ctx, env.Client, sub, worker); err != nil {
		t.Fatal(err)
	}
	sub = waitReady(t, ctx, sub)
	if faultFired(f.ID) != 1 {
		t.Fatalf("the latency fault did not hold the create (fired %d)", faultFired(f.ID))
	}
	if sub.Status.StripeState == "" || sub.Status.CurrentPeriodEnd == nil {
		t.Errorf("the create's state was not handed over: stripeStatus %q, currentPeriodEnd %v",
			sub.Status.StripeState, sub.Status.CurrentPeriodEnd)
	}
	if sub.Status.LatestInvoice == nil || sub.Status.LatestInvoice.ID != "in_early" ||
		sub.Status.LastEventID != "evt_invoice_first" {
		t.Errorf("the event's fold was overwritten: latestInvoice %+v, lastEventID %q", sub.Status.LatestInvoice,
			sub.Status.LastEventID)
	}
	if n := calls("GET /v1/subscriptions/") - reads; n != 0 {
		t.Errorf("%d subscription reads, want 0", n)
	}
}

// A Subscription applied with its Customer waits silently while the Customer is created: no DependencyNotReady
// write, no Event. A reference to an object that does not exist is said at once.
func TestDependencyWaits(t *testing.T) {
	ctx, ns := newNamespace(t)
	create(t, newProduct(ns, "plan"))
	price := newPrice(ns, "monthly", 700)
	create(t, price)
	price = waitReady(t, ctx, price)
	cus := newCustomer(ns, "payer")
	sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plan"},
		Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: "payer"},
			Items: []billingv1.SubscriptionItem{{PriceID: price.Status.ID, Quantity: ptr.To[int64](1)}}}}
	// Applied together: the Subscription's first pass finds the Customer without an ID.
	create(t, cus, sub)
	waitReady(t, ctx, sub)
	got := writesTo(ns, "plan")
	if len(got) < 2 || got[0] != "patch" || got[1] != "status apply" {
		t.Errorf("writes to the Subscription %v, want the pending create first, then its status", got)
	}
	evs := &corev1.EventList{}
	if err := env.Client.List(ctx, evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == "plan" && e.Reason == billingv1.ReasonDependencyNotReady {
			t.Errorf("an Event for a wait that ended by itself: %s", e.Message)
		}
	}

	orphan := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan"},
		Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: "nobody"},
			Items: []billingv1.SubscriptionItem{{PriceID: price.Status.ID}}}}
	if err := env.Client.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	c := waitReason(t, ctx, orphan, billingv1.ReasonDependencyNotReady)
	if c.Message != "Customer "+ns+"/nobody does not exist; create it or fix the reference" {
		t.Errorf("message %q", c.Message)
	}
	// Creating the missing Customer brings the Subscription back.
	if err := env.Client.Create(ctx, newCustomer(ns, "nobody")); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ctx, orphan)
}

// The pending-create record is stored although the event worker wrote the object's status after the pass read it
// (no new pass, so no repeated Stripe call); a spec change meanwhile ends the pass before anything is sent.
func TestPendingRecordAfterAConcurrentStatusWrite(t *testing.T) {
	ctx, ns := newNamespace(t)
	sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "contended"},
		Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: "absent"},
			Items: []billingv1.SubscriptionItem{{PriceID: "price_x", Quantity: ptr.To[int64](1)}}}}
	create(t, sub)
	waitReason(t, ctx, sub, billingv1.ReasonDependencyNotReady)
	key := client.ObjectKeyFromObject(sub)
	read := &billingv1.Subscription{}
	if err := env.Client.Get(ctx, key, read); err != nil {
		t.Fatal(err)
	}
	worker := read.DeepCopy()
	worker.Status.LastEventID = "evt_meanwhile"
	if err := (statusOwner{name: ownerEvents, webhooks: true}).apply(ctx, env.Client, read, worker); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler[*billingv1.Subscription]{Client: env.Client, APIReader: env.Client,
		External: subscriptionExternal{}, New: func() *billingv1.Subscription { return &billingv1.Subscription{} }}
	pending := &billingv1.PendingCreate{IdempotencyKey: "k-test", Generation: read.Generation, StartedAt: metav1.Now()}
	base := read.DeepCopy()
	if err := r.addFinalizer(ctx, read, &base, pending); err != nil {
		t.Fatalf("a status-only write made the pending record fail: %v", err)
	}
	stored := &billingv1.Subscription{}
	if err := env.Client.Get(ctx, key, stored); err != nil {
		t.Fatal(err)
	}
	if p := PendingCreate(stored); p == nil || p.IdempotencyKey != "k-test" ||
		!slices.Contains(stored.Finalizers, billingv1.Finalizer) || stored.Status.LastEventID != "evt_meanwhile" {
		t.Fatalf("stored: pending %+v, finalizers %v, lastEventID %q", p, stored.Finalizers, stored.Status.LastEventID)
	}

	stale := stored.DeepCopy()
	stored.Spec.Items[0].Quantity = ptr.To[int64](2)
	if err := env.Client.Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	base = stale.DeepCopy()
	pending.IdempotencyKey = "k-test-2"
	if err := r.addFinalizer(ctx, stale, &base, pending); !apierrors.IsConflict(err) {
		t.Fatalf("a spec change after the read did not end the pass: %v", err)
	}
}

// The credentials controller lists every billing object when it runs, so it runs only when a Secret may change from
// unused to used or back: not on status writes or spec edits, and about once per Secret for a bulk apply.
func TestCredentialsControllerRunsPerSecretNotPerWrite(t *testing.T) {
	ctx, ns := newNamespace(t)
	reconciles := func() float64 {
		mfs, err := metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0.0
		for _, mf := range mfs {
			if mf.GetName() != "controller_runtime_reconcile_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "controller" && l.GetValue() == "credentials" {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
		return n
	}
	// A team namespace with its own Secret, and a bulk apply of 200 Customers using it.
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
		Data: map[string][]byte{credentials.APIKeyField: []byte(testAPIKey)}})
	time.Sleep(300 * time.Millisecond) // the Secret's own reconcile
	before := reconciles()
	customers := make([]*billingv1.Customer, 0, 200)
	for i := range 200 {
		c := newCustomer(ns, fmt.Sprintf("bulk-%d", i))
		create(t, c)
		customers = append(customers, c)
	}
	for _, c := range customers {
		waitReady(t, ctx, c)
	}
	time.Sleep(500 * time.Millisecond)
	// Two Secrets may serve them (the namespace's and the operator-wide one), each waking the controller until it
	// is seen in use; a little slack for other tests' objects settling in the background.
	if n := reconciles() - before; n > 12 {
		t.Errorf("the credentials controller ran %v times for a bulk apply of 200 objects", n)
	}

	cus := customers[0]
	before = reconciles()
	for i := range 10 {
		// Each request makes the loop read Stripe and write status (lastHandledReconcileAt, lastSyncedAt).
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
				return err
			}
			cus.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: fmt.Sprint(i)}
			return env.Client.Update(ctx, cus)
		})
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
				return err
			}
			if cus.Status.LastHandledReconcileAt != fmt.Sprint(i) {
				return fmt.Errorf("request %d not handled yet", i)
			}
			return nil
		})
	}
	if n := reconciles() - before; n > 3 {
		t.Errorf("the credentials controller ran %v times for 10 status writes", n)
	}
}

// A price rollover learns whether the old price is its product's default from the Product's status, not from a
// read: the default is moved to the successor with no product read. (TestPriceRolloverKeepAndMigrate covers a
// Product status behind Stripe: the refused archive falls back to reading the product.)
func TestPriceRolloverReadsNoProduct(t *testing.T) {
	ctx, ns := newNamespace(t)
	prod := newProduct(ns, "plan")
	price := newPrice(ns, "monthly", 900)
	create(t, prod, price)
	price = waitReady(t, ctx, price)
	prod = waitReady(t, ctx, prod)
	oldID := price.Status.ID
	if _, err := simClient().API.Products.Update(prod.Status.ID,
		&stripego.ProductParams{DefaultPrice: stripego.String(oldID)}); err != nil {
		t.Fatal(err)
	}
	// The Product's status learns the default at its next read.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(prod), prod); err != nil {
			return err
		}
		if prod.Status.DefaultPriceID != oldID {
			prod.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: time.Now().String()}
			if err := env.Client.Update(ctx, prod); err != nil {
				return err
			}
			return fmt.Errorf("the Product's status does not show the default price yet")
		}
		return nil
	})
	productReads := calls("GET /v1/products/{id}")
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(price), price); err != nil {
			return err
		}
		price.Spec.UnitAmount = 1100
		return env.Client.Update(ctx, price)
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(price), price); err != nil {
			return err
		}
		if price.Status.ID == oldID || price.Status.ObservedGeneration != price.Generation {
			return fmt.Errorf("not rolled yet")
		}
		return nil
	})
	if n := calls("GET /v1/products/{id}") - productReads; n != 0 {
		t.Errorf("%d product reads during the rollover, want 0", n)
	}
	got, err := simClient().API.Products.Get(prod.Status.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.DefaultPrice == nil || got.DefaultPrice.ID != price.Status.ID {
		t.Errorf("the product's default price is %v, want the successor %s", got.DefaultPrice, price.Status.ID)
	}
	if old := stripePrice(t, oldID); old.Active {
		t.Error("the old price is still active")
	}
}

// waitPendingCreate waits until obj's pending-create record is stored (its create is about to be sent), and reads
// obj as stored.
func waitPendingCreate(t *testing.T, ctx context.Context, obj billingv1.StripeObject) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if PendingCreate(obj) == nil {
			return fmt.Errorf("no pending create yet")
		}
		return nil
	})
}
