package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// The state gauges count what the cache holds: stalled objects and how long the oldest has been stalled per kind,
// subscriptions with a failed payment, disputed customers, StripeEvents per phase and the oldest pending one's age.
func TestStateMetrics(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	cond := func(typ string, status metav1.ConditionStatus, since time.Duration) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: "R", LastTransitionTime: ago(since)}
	}
	om := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "ns", Name: name} }
	customer := func(name string, conds ...metav1.Condition) *billingv1.Customer {
		c := &billingv1.Customer{ObjectMeta: om(name)}
		c.Status.Conditions = conds
		return c
	}
	price := func(name string, conds ...metav1.Condition) *billingv1.Price {
		p := &billingv1.Price{ObjectMeta: om(name)}
		p.Status.Conditions = conds
		return p
	}
	sub := func(name string, conds ...metav1.Condition) *billingv1.Subscription {
		s := &billingv1.Subscription{ObjectMeta: om(name)}
		s.Status.Conditions = conds
		return s
	}
	event := func(name string, phase billingv1.StripeEventPhase, age time.Duration) *billingv1.StripeEvent {
		e := &billingv1.StripeEvent{ObjectMeta: om(name)}
		e.CreationTimestamp = ago(age)
		e.Status.Phase = phase
		return e
	}
	objs := []client.Object{
		customer("stalled", cond(billingv1.ConditionStalled, metav1.ConditionTrue, 20*time.Minute)),
		customer("disputed", cond(billingv1.ConditionDisputed, metav1.ConditionTrue, time.Hour),
			cond(billingv1.ConditionStalled, metav1.ConditionFalse, 2*time.Hour)),
		price("p1", cond(billingv1.ConditionStalled, metav1.ConditionTrue, 5*time.Minute)),
		price("p2", cond(billingv1.ConditionStalled, metav1.ConditionTrue, 10*time.Minute)),
		sub("failing", cond(billingv1.ConditionPaymentFailed, metav1.ConditionTrue, time.Minute)),
		sub("paid", cond(billingv1.ConditionPaymentFailed, metav1.ConditionFalse, time.Minute)),
		event("new", "", 7*time.Minute),
		event("pending", billingv1.EventPending, 2*time.Minute),
		event("done", billingv1.EventProcessed, time.Hour),
		event("lost", billingv1.EventUnroutable, time.Hour),
	}
	scheme := runtime.NewScheme()
	if err := billingv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := &stateCollector{}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d metrics before a manager leads", n)
	}
	reader := storesOf(t, scheme, objs...)
	c.set(reader, func() time.Time { return now })
	want := `
# HELP stripe_operator_customers_disputed Customers with an open dispute (Disputed condition True).
# TYPE stripe_operator_customers_disputed gauge
stripe_operator_customers_disputed 1
# HELP stripe_operator_objects_stalled Billing objects whose Stalled condition is True (a person must act), by kind.
# TYPE stripe_operator_objects_stalled gauge
stripe_operator_objects_stalled{kind="BillingPortalConfiguration"} 0
stripe_operator_objects_stalled{kind="Coupon"} 0
stripe_operator_objects_stalled{kind="Customer"} 1
stripe_operator_objects_stalled{kind="EntitlementFeature"} 0
stripe_operator_objects_stalled{kind="Meter"} 0
stripe_operator_objects_stalled{kind="Price"} 2
stripe_operator_objects_stalled{kind="Product"} 0
stripe_operator_objects_stalled{kind="PromotionCode"} 0
stripe_operator_objects_stalled{kind="Subscription"} 0
stripe_operator_objects_stalled{kind="TaxRate"} 0
# HELP stripe_operator_objects_stalled_oldest_seconds How long the longest-stalled billing object of each kind has been Stalled, from the condition's lastTransitionTime (0 when none is).
# TYPE stripe_operator_objects_stalled_oldest_seconds gauge
stripe_operator_objects_stalled_oldest_seconds{kind="BillingPortalConfiguration"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="Coupon"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="Customer"} 1200
stripe_operator_objects_stalled_oldest_seconds{kind="EntitlementFeature"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="Meter"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="Price"} 600
stripe_operator_objects_stalled_oldest_seconds{kind="Product"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="PromotionCode"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="Subscription"} 0
stripe_operator_objects_stalled_oldest_seconds{kind="TaxRate"} 0
# HELP stripe_operator_stripeevents Stored StripeEvents by phase; Pending is the event worker's backlog.
# TYPE stripe_operator_stripeevents gauge
stripe_operator_stripeevents{phase="Failed"} 0
stripe_operator_stripeevents{phase="Pending"} 2
stripe_operator_stripeevents{phase="Processed"} 1
stripe_operator_stripeevents{phase="Unroutable"} 1
# HELP stripe_operator_stripeevents_oldest_pending_seconds Age of the oldest StripeEvent not yet processed, from its creation (0 when none is pending).
# TYPE stripe_operator_stripeevents_oldest_pending_seconds gauge
stripe_operator_stripeevents_oldest_pending_seconds 420
# HELP stripe_operator_subscriptions_payment_failed Subscriptions whose PaymentFailed condition is True.
# TYPE stripe_operator_subscriptions_payment_failed gauge
stripe_operator_subscriptions_payment_failed 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// Another manager took over: the first one's end does not stop the reporting.
	c.set(storesOf(t, scheme), time.Now)
	c.unset(reader)
	if n := testutil.CollectAndCount(c, "stripe_operator_subscriptions_payment_failed"); n != 1 {
		t.Errorf("%d payment-failed series after a takeover", n)
	}
}

// storesOf is a cache whose informers' stores hold objs, with an empty store for every other billing kind and
// StripeEvents (the informers are not run).
func storesOf(t *testing.T, scheme *runtime.Scheme, objs ...client.Object) *informertest.FakeInformers {
	t.Helper()
	c := &informertest.FakeInformers{Scheme: scheme,
		InformersByGVK: map[schema.GroupVersionKind]toolscache.SharedIndexInformer{}}
	empty := make([]client.Object, 0, 1+len(kinds))
	empty = append(empty, &billingv1.StripeEvent{})
	for _, k := range kinds {
		empty = append(empty, k.newObject())
	}
	for _, o := range append(empty, objs...) {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			t.Fatal(err)
		}
		inf, ok := c.InformersByGVK[gvk]
		if !ok {
			inf = toolscache.NewSharedIndexInformer(nil, o, 0, toolscache.Indexers{})
			c.InformersByGVK[gvk] = inf
		}
		if o.GetName() != "" {
			if err := inf.GetStore().Add(o); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// The kinds' work queues are the fair ones: an object's wait is counted under its namespace.
func TestQueueMetricsByNamespace(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "queued")
	create(t, cus)
	waitReady(t, ctx, cus)
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "stripe_operator_queue_wait_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			// The suite's namespaces outnumber the 20 named ones: a later one is counted as "other".
			if labels["controller"] == "customer" && (labels["namespace"] == ns || labels["namespace"] == "other") &&
				m.GetHistogram().GetSampleCount() > 0 {
				return
			}
		}
	}
	t.Fatalf("no queue wait recorded for namespace %s", ns)
}
