package controllers

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

func TestStripForCache(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stripe-credentials",
		Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{"apiKey":"c2tfdGVzdF8x"}}`,
			"team": "billing"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate}}}}
	out, err := StripForCache(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Secret)
	if len(got.ManagedFields) != 0 || got.Annotations[corev1.LastAppliedConfigAnnotation] != "" ||
		got.Annotations["team"] != "billing" {
		t.Fatalf("stripped object: %+v", got.ObjectMeta)
	}

	record := func(key string) string {
		raw, _ := json.Marshal(billingv1.PendingCreate{IdempotencyKey: key, Generation: 1})
		return string(raw)
	}
	for _, tc := range []struct {
		name      string
		ann       map[string]string
		createKey string
		keep      bool
	}{
		{"recorded", map[string]string{billingv1.AnnotationPendingCreate: record("k1")}, "k1", false},
		{"not recorded", map[string]string{billingv1.AnnotationPendingCreate: record("k2")}, "k1", true},
		{"first create not recorded", map[string]string{billingv1.AnnotationPendingCreate: record("k1")}, "", true},
		{"not the operator's", map[string]string{billingv1.AnnotationPendingCreate: "{}"}, "k1", true},
	} {
		c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: tc.ann,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "stripe-operator"}}}}
		c.Status.CreateKey = tc.createKey
		before := PendingCreate(c)
		out, _ := StripForCache(c)
		got := out.(*billingv1.Customer)
		_, kept := got.Annotations[billingv1.AnnotationPendingCreate]
		if kept != tc.keep || len(got.ManagedFields) != 0 {
			t.Errorf("%s: record kept %v, want %v", tc.name, kept, tc.keep)
		}
		if !tc.keep && got.Annotations != nil {
			t.Errorf("%s: an empty annotations map is cached", tc.name)
		}
		if after := PendingCreate(got); (before == nil) != (after == nil) {
			t.Errorf("%s: PendingCreate changed from %v to %v", tc.name, before, after)
		}
	}
}

// A cached StripeEvent keeps what routing reads of its payload, and routes exactly as the whole event does.
func TestStripForCacheCompactsEventPayloads(t *testing.T) {
	invoice := `{"id":"evt_1","type":"invoice.paid","request":{"id":null,"idempotency_key":null},` +
		`"data":{"object":{"id":"in_1","object":"invoice","subscription":"sub_1","customer":"cus_1",` +
		`"subscription_details":{"metadata":{"k8s_uid":"u1","k8s_name":"acme-pro"}},"lines":{"data":[` +
		strings.Repeat(`{"id":"il_1","amount":1000,"description":"1 × Pro (at $10.00 / month)"},`, 20) +
		`{"id":"il_2"}]},"total":1000,"metadata":{}}}}`
	taxID := `{"id":"evt_2","type":"customer.tax_id.created","data":{"object":{"id":"txi_1","object":"tax_id",` +
		`"customer":"cus_9","value":"DE123456789","type":"eu_vat"}}}`
	for _, raw := range []string{invoice, taxID} {
		ev := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Name: "evt"},
			Spec: billingv1.StripeEventSpec{Payload: raw, ObjectID: "x", ObjectType: "y"}}
		whole := ev.DeepCopy()
		out, _ := StripForCache(ev)
		got := out.(*billingv1.StripeEvent)
		if !routingPayloadOnly(got) || len(got.Spec.Payload) >= len(raw) {
			t.Errorf("payload of %d bytes cached as %d, marked %v", len(raw), len(got.Spec.Payload),
				routingPayloadOnly(got))
		}
		if a, b := eventFields(whole, nil), eventFields(got, nil); !reflect.DeepEqual(a, b) {
			t.Errorf("routing fields changed:\n%+v\n%+v", a, b)
		}
		if a, b := routeID(whole), routeID(got); a != b || a == "" {
			t.Errorf("route %q, cached %q", a, b)
		}
	}
	// A payload the worker cannot read is kept whole, unmarked.
	ev := &billingv1.StripeEvent{Spec: billingv1.StripeEventSpec{Payload: "{not json"}}
	out, _ := StripForCache(ev)
	if got := out.(*billingv1.StripeEvent); got.Spec.Payload != "{not json" || routingPayloadOnly(got) {
		t.Errorf("unreadable payload cached as %q", got.Spec.Payload)
	}
}

// The strings every cached object repeats are one copy.
func TestStripForCacheInternsSharedStrings(t *testing.T) {
	mk := func() *billingv1.Customer {
		c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: strings.Clone("team-a"),
			Finalizers: []string{strings.Clone(billingv1.Finalizer)}}}
		c.Status.Conditions = []metav1.Condition{{Type: strings.Clone("Ready"), Status: "True",
			Reason: strings.Clone("Synced"), Message: "Customer cus_1 is in sync with Stripe"}}
		return c
	}
	a, b := mk(), mk()
	_, _ = StripForCache(a)
	_, _ = StripForCache(b)
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Namespace, b.Namespace) || !same(a.Finalizers[0], b.Finalizers[0]) ||
		!same(a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason) ||
		!same(a.Status.Conditions[0].Type, b.Status.Conditions[0].Type) {
		t.Error("the shared strings of two cached objects are separate copies")
	}
	if a.Namespace != "team-a" || a.Status.Conditions[0].Reason != "Synced" {
		t.Errorf("interned values changed: %q %q", a.Namespace, a.Status.Conditions[0].Reason)
	}
}
